/*
 * The pod sandbox's process: it holds the pod's namespaces open. As PID 1 of a pod
 * it must exit on SIGINT/SIGTERM (PID 1 ignores signals it has no handler for) and,
 * when the pod shares its PID namespace, reap the orphans that get reparented to it.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal) { _exit(128 + signal); }
static void reap(int signal) { while (waitpid(-1, 0, WNOHANG) > 0) (void)signal; }

int main(void) {
  signal(SIGINT, stop);
  signal(SIGTERM, stop);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
