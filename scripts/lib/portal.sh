# shellcheck shell=bash
# The portal against a real cluster instead of the simulator: `npm start -- --cluster
# playground` writes an app-config that points the Kubernetes plugin's cluster list
# (and so Ferry's backend) at the playground of `npm run playground`, with the token of
# the portal's least-privilege ServiceAccount that operator/chart creates
# (portalAccess), and turns demo mode off. Sourced by scripts/ferry.

# Prints the path of an app-config file for the named cluster; only `playground` is known.
ferry_portal_cluster_config() {
  local cluster="$1"
  if [ "$cluster" != playground ]; then
    ferry_log "--cluster takes 'playground' (the cluster of 'npm run playground'), not '$cluster'; for a cluster of your own, list it under kubernetes.clusterLocatorMethods in an app-config file and pass it with --config"
    return 2
  fi
  local dir="${FERRY_PLAYGROUND_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/playground}"
  if [ "$(cat "$dir/status" 2>/dev/null || true)" != ready ]; then
    ferry_log "no playground is running; start it first with: npm run playground"
    return 1
  fi
  local kubectl
  kubectl="$(ferry_controlplane_bin_dir)/kubectl"
  local k=("$kubectl" --kubeconfig "$dir/kubeconfig")
  local server ca secret token
  server="$("${k[@]}" config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.server}')" || return 1
  ca="$("${k[@]}" config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')" || return 1
  # The chart's portalAccess token, in whatever namespace Ferry was installed.
  secret="$("${k[@]}" get secrets --all-namespaces -l app.kubernetes.io/component=portal-access \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' | head -n 1)"
  if [ -z "$secret" ]; then
    ferry_log "the playground has no portal token (operator/chart's portalAccess); was Ferry installed with portalAccess.create=false?"
    return 1
  fi
  token="$("${k[@]}" -n "${secret%%/*}" get secret "${secret#*/}" -o jsonpath='{.data.token}' | base64 -d)"
  if [ -z "$token" ]; then
    ferry_log "the portal token Secret ${secret} has no token yet; try again in a few seconds"
    return 1
  fi
  local file="$dir/app-config.portal.yaml"
  # The token is a credential: the file is the owner's alone.
  (umask 077 && cat >"$file" <<EOF
# Written by 'npm start -- --cluster playground' (scripts/lib/portal.sh); a new one each start.
kubernetes:
  serviceLocatorMethod:
    type: multiTenant
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: playground
          url: $server
          authProvider: serviceAccount
          serviceAccountToken: $token
          caData: $ca
ferry:
  demo:
    enabled: false
EOF
  )
  printf '%s\n' "$file"
}
