// Command ferry-runtime is Ferry's OCI runtime: runc, except that the first
// create of a container Ferry is moving onto this node restores it from the
// checkpoint the node agent received, instead of starting it fresh.
//
// containerd (or CRI-O) names it as the binary of the runtime handler `ferry`,
// which pods select with `runtimeClassName: ferry`. Every command other than
// that one create, and the start that follows it, goes to runc unchanged.
//
// How a container is known to be restored: its OCI spec carries the pod
// annotation RestoreAnnotation (`<container name>=<image id>`; containerd
// passes it through with the handler's `pod_annotations`, CRI-O with every
// pod annotation), and the node agent holds complete images under
// $FERRY_IMAGES_DIR/<image id> (the marker receivedMarker, written once the
// last byte arrived). The outcome is written to the images directory for the
// agent (restoredMarker or failedMarker) and kept in $FERRY_RUNTIME_STATE for
// the wrapper itself: an image id is restored at most once. A restored
// container that crashes later is created again by the kubelet (a new
// container id, the same annotation): that create starts fresh, as any
// container's restart does, and never rolls back to the checkpoint.
//
// Hibernation (the node agent's, see hibernate.go) goes through the same
// create: a container the agent checkpointed in place is created again by the
// kubelet as a holder that holds no memory, and once traffic asked for it, as
// a restore from the images the agent kept.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// RestoreAnnotation names the container to restore and the image id to restore it from.
	RestoreAnnotation = "ferry.dev/restore-from"
	// containerNameAnnotation is where containerd and CRI-O put the Kubernetes container's name.
	containerNameAnnotation     = "io.kubernetes.cri.container-name"
	crioContainerNameAnnotation = "io.kubernetes.container.name"
	// receivedMarker is written by the node agent once every image file is there.
	receivedMarker = ".ferry-received"
	// restoredMarker and failedMarker tell the node agent how the restore went.
	restoredMarker = ".ferry-container-restored"
	failedMarker   = ".ferry-restore-failed"
	// lazyMarker: the pages are still on the source (the lazy route); restore with
	// runc's --lazy-pages against the agent's `criu lazy-pages` daemon, whose work
	// directory (and socket) is lazyWorkDir.
	lazyMarker  = ".ferry-lazy"
	lazyWorkDir = "lazy-work"
	// restoreWorkDir holds CRIU's restore.log, beside the images.
	restoreWorkDir = "restore-work"
	// criuConfigFile is written into the work directory: what runc cannot say to CRIU.
	criuConfigFile   = "criu.conf"
	defaultImagesDir = "/dev/shm/ferry-agent"
	defaultStateDir  = "/run/ferry-runtime"
	// defaultRestoreWait is how long a create waits for images still arriving,
	// below the kubelet's default runtime request timeout (2 minutes).
	defaultRestoreWait = 60 * time.Second
	pollInterval       = 50 * time.Millisecond
)

// imageID is what the agent accepts as an image id (a directory name).
var imageID = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,120}$`)

// globalValueFlags are runc's global flags that take a value; the command is
// the first argument that is neither a flag nor such a value.
var globalValueFlags = map[string]bool{"--log": true, "--log-format": true, "--root": true, "--criu": true, "--rootless": true}

// createValueFlags are `runc create`'s flags that take a value.
var createValueFlags = map[string]bool{"--bundle": true, "-b": true, "--console-socket": true, "--pid-file": true, "--preserve-fds": true, "--pidfd-socket": true}

func main() {
	if filepath.Base(os.Args[0]) == holderName {
		hold()
	}
	runc, err := realRunc()
	if err != nil {
		fail("", err)
	}
	args := os.Args[1:]
	command, at := commandOf(args)
	switch command {
	case "create":
		if done, err := maybeHibernated(runc, args, at); done || err != nil {
			if err != nil {
				fail(logFile(args[:at]), err)
			}
			return
		}
		if done, err := maybeRestore(runc, args, at); done || err != nil {
			if err != nil {
				fail(logFile(args[:at]), err)
			}
			return
		}
	case "start":
		// runc restore leaves the container running: its start has nothing to do.
		if id := lastArg(args[at+1:]); id != "" && exists(startedMarker(id)) {
			return
		}
	case "delete":
		if id := lastArg(args[at+1:]); id != "" {
			defer os.Remove(startedMarker(id))
			passThroughAndWait(runc, args)
			return
		}
	}
	passThrough(runc, args)
}

// commandOf returns runc's command and its index in args ("" when there is none).
func commandOf(args []string) (string, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, i
		}
		if globalValueFlags[a] && !strings.Contains(a, "=") {
			i++
		}
	}
	return "", len(args)
}

// lastArg is the container id: runc takes it as the command's last argument.
func lastArg(args []string) string {
	if len(args) == 0 || strings.HasPrefix(args[len(args)-1], "-") {
		return ""
	}
	return args[len(args)-1]
}

// createOptions is what a create says about the container it makes.
type createOptions struct {
	id, bundle, pidFile, consoleSocket string
}

func parseCreate(args []string) createOptions {
	o := createOptions{bundle: "."}
	for i := 0; i < len(args); i++ {
		name, value, inline := strings.Cut(args[i], "=")
		if createValueFlags[name] && !inline && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch name {
		case "--bundle", "-b":
			o.bundle = value
		case "--pid-file":
			o.pidFile = value
		case "--console-socket":
			o.consoleSocket = value
		}
		if !strings.HasPrefix(args[i], "-") && i == len(args)-1 {
			o.id = args[i]
		}
	}
	return o
}

// maybeRestore restores the container when its spec asks for it and this node
// has not restored that image before. It reports whether it handled the create.
func maybeRestore(runc string, args []string, at int) (bool, error) {
	opts := parseCreate(args[at+1:])
	if opts.id == "" {
		return false, nil
	}
	image, err := requestedImage(opts.bundle)
	if err != nil || image == "" {
		return false, err
	}
	return restoreOnce(runc, args, at, opts, image, receivedMarker)
}

// restoreOnce restores the container from the images of `image`, once they
// are complete (`marker` is in their directory), unless this node restored (or
// tried) that image id before, which makes this create a restart that starts
// fresh. It reports whether it handled the create.
func restoreOnce(runc string, args []string, at int, opts createOptions, image, marker string) (bool, error) {
	record := filepath.Join(stateDir(), "images", image)
	if previous, err := os.ReadFile(record); err == nil {
		// Restored (or tried) once already: this is a restart, which starts fresh.
		fmt.Fprintf(os.Stderr, "ferry-runtime: image %s was used before (%s); %s starts fresh\n", image, strings.TrimSpace(string(previous)), opts.id)
		return false, nil
	}
	dir := filepath.Join(imagesDir(), image)
	if err := waitForImages(dir, marker); err != nil {
		return true, err
	}
	// Claimed before the attempt: a restore that fails half way is not tried again.
	if err := os.MkdirAll(filepath.Dir(record), 0o700); err != nil {
		return true, err
	}
	claim, err := os.OpenFile(record, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return true, err
	}
	fmt.Fprintf(claim, "claimed by %s\n", opts.id)
	claim.Close()

	started := time.Now()
	restoreErr := restore(runc, args[:at], opts, dir)
	ms := time.Since(started).Milliseconds()
	if restoreErr != nil {
		_ = os.WriteFile(record, []byte(fmt.Sprintf("failed in %s: %v\n", opts.id, restoreErr)), 0o600)
		_ = os.WriteFile(filepath.Join(dir, failedMarker), []byte(restoreErr.Error()), 0o600)
		return true, restoreErr
	}
	pid, _ := os.ReadFile(opts.pidFile)
	outcome, _ := json.Marshal(map[string]any{
		"containerId": opts.id,
		"pid":         atoi(strings.TrimSpace(string(pid))),
		"restoreMs":   ms,
	})
	_ = os.WriteFile(record, append([]byte("restored "), append(outcome, '\n')...), 0o600)
	_ = os.WriteFile(filepath.Join(dir, restoredMarker), outcome, 0o600)
	if err := os.MkdirAll(filepath.Dir(startedMarker(opts.id)), 0o700); err != nil {
		return true, err
	}
	return true, os.WriteFile(startedMarker(opts.id), []byte(image), 0o600)
}

// requestedImage is the image id the container's spec asks to be restored from, or "".
func requestedImage(bundle string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("reading the bundle's config.json: %w", err)
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return "", fmt.Errorf("parsing the bundle's config.json: %w", err)
	}
	want, ok := spec.Annotations[RestoreAnnotation]
	if !ok {
		return "", nil
	}
	container, image, found := strings.Cut(want, "=")
	if !found || !imageID.MatchString(image) {
		return "", fmt.Errorf("annotation %s is %q; it must be <container name>=<image id>, the id matching %s", RestoreAnnotation, want, imageID)
	}
	name := spec.Annotations[containerNameAnnotation]
	if name == "" {
		name = spec.Annotations[crioContainerNameAnnotation]
	}
	// The pod's sandbox and its other containers carry the annotation too.
	if name != container {
		return "", nil
	}
	return image, nil
}

func waitForImages(dir, marker string) error {
	wait := defaultRestoreWait
	if s := os.Getenv("FERRY_RESTORE_WAIT_SECONDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			wait = time.Duration(n) * time.Second
		}
	}
	until := time.Now().Add(wait)
	for !exists(filepath.Join(dir, marker)) && !(marker == receivedMarker && dumpedHere(dir)) {
		if time.Now().After(until) {
			return fmt.Errorf("no complete checkpoint images in %s after %s: the node agent has not received them; the container is not started fresh, since it is to be restored", dir, wait)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// restore runs `runc restore --detach` with the create's global flags and options.
func restore(runc string, global []string, opts createOptions, dir string) error {
	work := filepath.Join(dir, restoreWorkDir)
	lazy := exists(filepath.Join(dir, lazyMarker))
	if lazy {
		// CRIU's restore finds the lazy-pages daemon by its socket in the work directory.
		work = filepath.Join(dir, lazyWorkDir)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	// Connections are restored closed: the pod has a new address, and its
	// clients reconnect through the Service. The node's own CRIU settings come first.
	config := ""
	if node := os.Getenv("CRIU_CONFIG_FILE"); node != "" {
		if b, err := os.ReadFile(node); err == nil {
			config = string(b) + "\n"
		}
	}
	config += "tcp-close\n"
	configPath := filepath.Join(work, criuConfigFile)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	args := append(append([]string{}, global...), "restore", "--detach",
		"--bundle", opts.bundle, "--image-path", dir, "--work-path", work)
	if opts.pidFile != "" {
		args = append(args, "--pid-file", opts.pidFile)
	}
	if opts.consoleSocket != "" {
		args = append(args, "--console-socket", opts.consoleSocket)
	}
	if lazy {
		args = append(args, "--lazy-pages")
	}
	args = append(args, opts.id)
	cmd := exec.Command(runc, args...)
	cmd.Env = append(os.Environ(), "CRIU_CONFIG_FILE="+configPath)
	// runc hands its own standard streams to the restored process (they are
	// the shim's): they must be the wrapper's, never a pipe it reads.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		said := criuErrors(filepath.Join(work, "restore.log"))
		if said == "" {
			said = lastLines(runcLogErrors(logFile(global)), 3)
		}
		return fmt.Errorf("runc restore of %s from %s failed (%v): %s", opts.id, dir, err, said)
	}
	return nil
}

// criuErrors is the last few error lines of a CRIU log.
func criuErrors(log string) string {
	raw, err := os.ReadFile(log)
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// runcLogErrors is what runc's JSON log says at level error.
func runcLogErrors(log string) string {
	raw, err := os.ReadFile(log)
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" {
			out = append(out, entry.Msg)
		}
	}
	return strings.Join(out, "\n")
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// realRunc is the runc this wrapper runs: $FERRY_RUNC, else `runc` on PATH.
func realRunc() (string, error) {
	if r := os.Getenv("FERRY_RUNC"); r != "" {
		return r, nil
	}
	self, _ := os.Executable()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		candidate := filepath.Join(dir, "runc")
		if st, err := os.Stat(candidate); err == nil && st.Mode()&0o111 != 0 {
			if resolved, _ := filepath.EvalSymlinks(candidate); resolved != self {
				return candidate, nil
			}
		}
	}
	return "", errors.New("no runc found: set FERRY_RUNC to runc's path, or put runc on PATH")
}

func passThrough(runc string, args []string) {
	err := syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fail("", fmt.Errorf("running %s: %w", runc, err))
}

func passThroughAndWait(runc string, args []string) {
	cmd := exec.Command(runc, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Remove(startedMarker(lastArg(args)))
			os.Exit(exit.ExitCode())
		}
		fail("", err)
	}
}

func imagesDir() string { return envOr("FERRY_IMAGES_DIR", defaultImagesDir) }
func stateDir() string  { return envOr("FERRY_RUNTIME_STATE", defaultStateDir) }

func startedMarker(id string) string {
	return filepath.Join(stateDir(), "containers", filepath.Base(id))
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// dumpedHere says whether the node agent dumped these images on this node with
// every page (dumpedMarker says "local"): complete here too, for a StatefulSet
// member restored on its source after its target died mid-restore.
func dumpedHere(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, dumpedMarker))
	return err == nil && strings.TrimSpace(string(b)) == "local"
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// logFile is the --log runc was given: containerd's shim reads errors from it.
func logFile(global []string) string {
	for i, a := range global {
		if a == "--log" && i+1 < len(global) {
			return global[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--log="); ok {
			return v
		}
	}
	return ""
}

// fail reports err where the caller looks (stderr, and runc's JSON log for the
// shim) and exits 1.
func fail(log string, err error) {
	fmt.Fprintf(os.Stderr, "ferry-runtime: %v\n", err)
	if log != "" {
		if f, e := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); e == nil {
			line, _ := json.Marshal(map[string]string{"level": "error", "msg": "ferry-runtime: " + err.Error(), "time": time.Now().Format(time.RFC3339Nano)})
			f.Write(append(line, '\n'))
			f.Close()
		}
	}
	os.Exit(1)
}
