# shellcheck shell=bash
# `npm run playground`: a local cluster of real kubelet + containerd nodes with Ferry
# installed by its chart from its own images, left running in the background for a
# person's own shell (operator/test/nodes/playground.ts is the process that holds it).
#
#   ferry_playground_up     starts it (or finds it running), prints what to paste
#   ferry_playground_down   stops it; nothing of it is left behind
#
# Its state lives in $FERRY_CACHE/playground: `pid`, `status`, `kubeconfig`, `log`.

FERRY_PLAYGROUND_DIR="${FERRY_PLAYGROUND_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/playground}"
# A cold start builds the images and fetches Debian packages on a two-core machine.
FERRY_PLAYGROUND_START_TIMEOUT_S="${FERRY_PLAYGROUND_START_TIMEOUT_S:-1800}"
FERRY_PLAYGROUND_STOP_TIMEOUT_S=180

ferry_playground_pid() {
  local pid
  pid="$(cat "$FERRY_PLAYGROUND_DIR/pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'playground.ts serve'; then
    printf '%s' "$pid"
  fi
}

ferry_playground_up() {
  local pid started=$SECONDS
  pid="$(ferry_playground_pid)"
  if [ -z "$pid" ]; then
    local bin
    bin="$(ferry_controlplane_binaries)" || return 1
    ferry_helm >/dev/null || return 1
    ferry_node_binaries >/dev/null || return 1
    # The nodes' runc checkpoints through CRIU; kube-proxy programs nftables with `nft`.
    ferry_criu || return 1
    rm -rf "$FERRY_PLAYGROUND_DIR"
    mkdir -p "$FERRY_PLAYGROUND_DIR"
    ferry_log "starting the playground (log: $FERRY_PLAYGROUND_DIR/log)"
    # Its own session, so that it outlives this command and the terminal it ran in.
    # Only the command itself in the background, so that its pid is the one recorded.
    (
      cd "$FERRY_ROOT/operator" || exit 1
      FERRY_CONTROLPLANE_BIN="$bin" setsid node --import tsx test/nodes/playground.ts serve "$FERRY_PLAYGROUND_DIR" \
        >"$FERRY_PLAYGROUND_DIR/log" 2>&1 </dev/null &
      echo $! >"$FERRY_PLAYGROUND_DIR/pid"
    )
    pid="$(cat "$FERRY_PLAYGROUND_DIR/pid")"
  fi
  # The timeout is the cluster's start, not the builds' above (a cold cache's Go builds
  # alone took about 30 minutes on a loaded machine).
  local launched=$SECONDS
  local status=''
  while [ $((SECONDS - launched)) -lt "$FERRY_PLAYGROUND_START_TIMEOUT_S" ]; do
    status="$(cat "$FERRY_PLAYGROUND_DIR/status" 2>/dev/null || true)"
    case "$status" in
      ready) break ;;
      failed*)
        ferry_log "the playground failed to start: ${status#failed: } (see $FERRY_PLAYGROUND_DIR/log)"
        return 1
        ;;
    esac
    if ! kill -0 "$pid" 2>/dev/null; then
      ferry_log "the playground stopped while starting; the end of its log:"
      tail -20 "$FERRY_PLAYGROUND_DIR/log" >&2
      return 1
    fi
    sleep 2
  done
  if [ "$status" != ready ]; then
    ferry_log "the playground was not ready within ${FERRY_PLAYGROUND_START_TIMEOUT_S} s (see $FERRY_PLAYGROUND_DIR/log)"
    return 1
  fi
  ferry_log "playground ready in $((SECONDS - started)) s; stop it with: npm run playground -- down"
  ferry_playground_instructions "$(ferry_controlplane_bin_dir)"
}

ferry_playground_instructions() {
  local bin="$1"
  cat <<EOF
export KUBECONFIG=$FERRY_PLAYGROUND_DIR/kubeconfig
export PATH=$bin:\$PATH

# The walkthrough of "The Stateful Spot Instance", opted in to Ferry by annotations:
kubectl get nodes -L karpenter.sh/capacity-type,topology.kubernetes.io/zone
kubectl apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: valkey
  labels:
    app: valkey
spec:
  replicas: 1
  selector:
    matchLabels:
      app: valkey
  template:
    metadata:
      labels:
        app: valkey
      annotations:
        ferry.dev/spot: enabled
        ferry.dev/permanent-ratio: "0"
        ferry.dev/migration: valkey
    spec:
      containers:
        - name: valkey
          image: valkey/valkey:9
          ports:
            - containerPort: 6379
          resources:
            requests:
              memory: 128Mi
              cpu: 250m
            limits:
              memory: 256Mi
              cpu: 500m
YAML
kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: valkey-client
spec:
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - labelSelector:
            matchLabels:
              app: valkey
          topologyKey: kubernetes.io/hostname
  containers:
    - name: client
      image: valkey/valkey:9
      command: ["sleep", "infinity"]
YAML
kubectl expose deployment valkey --port=6379
kubectl rollout status deployment valkey
kubectl wait --for=condition=Ready pod/valkey-client --timeout=120s
alias valkey-cli="kubectl exec valkey-client -- valkey-cli -h valkey"
valkey-cli HSET session:u9f3a user_id 4821 role admin last_seen "2026-05-28T14:03:00Z"
valkey-cli LPUSH jobs:email "send-welcome:4821" "send-invoice:4819"
valkey-cli SET agent:ctx:4821 "user prefers weekly summaries, timezone UTC+1"
kubectl drain --ignore-daemonsets --delete-emptydir-data \\
  "\$(kubectl get pod -l app=valkey -o jsonpath='{.items[0].spec.nodeName}')"
kubectl rollout status deployment valkey
kubectl get migrations
valkey-cli HGETALL session:u9f3a
valkey-cli LRANGE jobs:email 0 -1
valkey-cli GET agent:ctx:4821
EOF
}

ferry_playground_down() {
  local pid
  pid="$(ferry_playground_pid)"
  if [ -z "$pid" ]; then
    rm -rf "$FERRY_PLAYGROUND_DIR"
    ferry_log "no playground is running"
    return
  fi
  ferry_log "stopping the playground (pid $pid)"
  kill -TERM "$pid"
  local started=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - started)) -ge "$FERRY_PLAYGROUND_STOP_TIMEOUT_S" ]; then
      # Its cluster's next start cleans up after a killed run (RealNodeCluster's footprint).
      ferry_log "the playground did not stop within ${FERRY_PLAYGROUND_STOP_TIMEOUT_S} s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      (cd "$FERRY_ROOT/operator" && node --import tsx -e \
        "require('./test/nodes/RealNodeCluster').RealNodeCluster.cleanUpAfterKilledRuns()") || true
      break
    fi
    sleep 1
  done
  rm -rf "$FERRY_PLAYGROUND_DIR"
  ferry_log "playground stopped in $((SECONDS - started)) s"
}
