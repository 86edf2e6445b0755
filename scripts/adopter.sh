#!/usr/bin/env bash
# The adopter's test: Ferry installed into fresh apps from the current
# @backstage/create-app exactly as its READMEs say, from the release tarballs (not
# workspace links), started, and checked in Chromium (the Spot tab of an annotated
# entity shows data, the fleet page loads). Once with the new frontend system
# template, once with the legacy one (`--legacy`).
#
# Each generated app is cached, installed, under $FERRY_CACHE/adopter/ (a git commit
# marks its pristine state), so a warm run only re-applies the README steps, installs
# the tarballs and starts the app. Expects the toolchain on PATH (scripts/ferry sources it).
#   bash scripts/adopter.sh [new|legacy ...]      default: both
#   bash scripts/adopter.sh prepare               only generates and installs the apps
# FERRY_ADOPTER_TARBALLS=<dir> takes tarballs packed already instead of packing.
set -euo pipefail
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
ARTIFACTS="$FERRY_ROOT/e2e-tests/artifacts/adopter"
# create-app installs ~2 GB in 2.5 to 10 minutes on two cores; the dev server then
# compiles the whole app before it answers.
STARTUP_TIMEOUT_S="${FERRY_ADOPTER_STARTUP_TIMEOUT_S:-900}"
INSTALL_ATTEMPTS=3
mkdir -p "$ARTIFACTS" "$FERRY_CACHE/adopter"
# An adopter installs on their own machine, where Yarn writes the new app's lockfile.
# Under CI=true Yarn refuses to (immutable installs), and a cold run failed on it.
export YARN_ENABLE_IMMUTABLE_INSTALLS=false

log() { printf '\033[1madopter:\033[0m %s\n' "$*" >&2; }

# The current create-app, or the newest one cached when the registry does not answer.
create_app_version() {
  local version
  if version="$(npm view @backstage/create-app version 2>/dev/null)" && [ -n "$version" ]; then
    printf '%s' "$version"
    return
  fi
  # shellcheck disable=SC2012
  ls -1 "$FERRY_CACHE/adopter" | sed -nE 's/^create-app-([0-9.]+)-.*/\1/p' | sort -V | tail -1
}

# Yarn's fetch step sometimes crashes with "The `onCancel` handler was attached after
# the promise settled" (a Yarn bug); without HTTP retries it gets through, and a
# second attempt picks up where the first stopped.
yarn_install() {
  local attempt
  for attempt in $(seq 1 "$INSTALL_ATTEMPTS"); do
    if YARN_HTTP_RETRY=0 yarn install "$@"; then
      return 0
    fi
    log "yarn install failed (attempt $attempt of $INSTALL_ATTEMPTS)"
  done
  return 1
}

# Generates and installs the app once per create-app version and template.
generated_app() {
  local template="$1" version="$2"
  local dir="$FERRY_CACHE/adopter/create-app-$version-$template"
  if [ -f "$dir.ready" ]; then
    printf '%s' "$dir"
    return
  fi
  # `prepare` may be generating it in the background: take turns, and the second finds it.
  exec 8> "$dir.generate.lock"
  flock 8
  if [ -f "$dir.ready" ]; then
    flock -u 8
    printf '%s' "$dir"
    return
  fi
  log "generating a $template app with @backstage/create-app@$version (cached in $dir)"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  rm -f "$dir.ready"
  local flags=(--path "$dir" --skip-install)
  [ "$template" = legacy ] && flags+=(--legacy)
  local started=$SECONDS
  # Called in a command substitution, where errexit does not hold: each step says so.
  BACKSTAGE_APP_NAME=adopter npx --yes "@backstage/create-app@$version" "${flags[@]}" >&2 ||
    { log "create-app $version failed"; return 1; }
  (cd "$dir" && yarn_install >&2) || { log "the $template app's yarn install failed"; return 1; }
  (
    cd "$dir"
    git init -q
    git add -A
    git -c user.name=ferry -c user.email=ferry@localhost commit -qm "create-app $version $template, as generated"
  ) || return 1
  touch "$dir.ready"
  flock -u 8
  log "generated and installed the $template app in $((SECONDS - started))s"
  printf '%s' "$dir"
}

# The body of the ```sh/```yaml block after `<!-- adopter-test: NAME -->` in a README.
readme_block() {
  local readme="$1" name="$2"
  awk -v name="$name" '
    $0 ~ "<!-- adopter-test: " name " -->" { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' "$readme"
}

run_readme_block() {
  local readme="$1" name="$2" block
  block="$(readme_block "$readme" "$name")"
  if [ -z "$block" ]; then
    echo "adopter: no block named $name in $readme" >&2
    return 1
  fi
  log "README step $name ($(basename "$(dirname "$readme")")/README.md)"
  bash -euo pipefail -c "$block"
}

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

app_pid=""
stop_app() {
  if [ -n "$app_pid" ]; then
    kill -TERM -- "-$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
    app_pid=""
  fi
}
trap stop_app EXIT

adopt() {
  local template="$1" tarballs="$2" version="$3"
  trap stop_app EXIT
  # The Yarn fetch crash above hits `yarn add` as well: every Yarn command of the
  # README steps runs without HTTP retries.
  export YARN_HTTP_RETRY=0
  local app started
  app="$(generated_app "$template" "$version")" || return 1
  exec 9> "$app.lock"
  flock 9
  started=$SECONDS
  cd "$app"
  # Back to the app as generated; node_modules stays and yarn brings it in line.
  git reset -q --hard
  git clean -fdxq -e node_modules -e .yarn
  mkdir -p ferry-packages
  cp "$tarballs"/*.tgz ferry-packages/

  local readmes="$FERRY_ROOT/plugins"
  # The stock app's own fixes come first: installing its better-sqlite3 12 would
  # build it from source only to replace it with 13.2.0 a step later.
  run_readme_block "$readmes/ferry-backend/README.md" stock-app-fixes > "$ARTIFACTS/$template-add.log" 2>&1 ||
    { tail -n 40 "$ARTIFACTS/$template-add.log" >&2; return 1; }
  run_readme_block "$readmes/ferry/README.md" resolutions >> "$ARTIFACTS/$template-add.log" 2>&1 ||
    { tail -n 40 "$ARTIFACTS/$template-add.log" >&2; return 1; }
  run_readme_block "$readmes/ferry/README.md" frontend-add >> "$ARTIFACTS/$template-add.log" 2>&1 ||
    { tail -n 40 "$ARTIFACTS/$template-add.log" >&2; return 1; }
  run_readme_block "$readmes/ferry-backend/README.md" backend-add >> "$ARTIFACTS/$template-add.log" 2>&1 ||
    { tail -n 40 "$ARTIFACTS/$template-add.log" >&2; return 1; }
  run_readme_block "$readmes/ferry-backend/README.md" demo-add >> "$ARTIFACTS/$template-add.log" 2>&1 ||
    { tail -n 40 "$ARTIFACTS/$template-add.log" >&2; return 1; }
  readme_block "$readmes/ferry-backend/README.md" demo-entity >> examples/entities.yaml

  # The code steps of the READMEs, applied as written there.
  node "$FERRY_ROOT/scripts/adopter/applyCodeSteps.mjs" "$template" "$app"
  log "$template app: README steps applied and tarballs installed in $((SECONDS - started))s"

  # Their own ports, so a running portal (ours or another engineer's) is left alone.
  local frontend_port backend_port
  frontend_port="$(free_port)"
  backend_port="$(free_port)"
  cat > app-config.local.yaml <<YAML
app:
  baseUrl: http://localhost:$frontend_port
backend:
  baseUrl: http://localhost:$backend_port
  listen:
    port: $backend_port
  cors:
    origin: http://localhost:$frontend_port
YAML
  log "$template app: yarn start (frontend :$frontend_port, backend :$backend_port; log $ARTIFACTS/$template-app.log)"
  set -m
  yarn start > "$ARTIFACTS/$template-app.log" 2>&1 &
  app_pid=$!
  set +m
  local waited=$SECONDS
  until curl -fsS -o /dev/null "http://localhost:$backend_port/.backstage/health/v1/readiness" 2>/dev/null &&
    curl -fsS -o /dev/null "http://localhost:$frontend_port" 2>/dev/null; do
    if ! kill -0 "$app_pid" 2>/dev/null; then
      echo "adopter: the $template app exited during start-up; the end of its log:" >&2
      tail -n 40 "$ARTIFACTS/$template-app.log" >&2
      return 1
    fi
    if [ $((SECONDS - waited)) -gt "$STARTUP_TIMEOUT_S" ]; then
      echo "adopter: the $template app did not answer within ${STARTUP_TIMEOUT_S}s; the end of its log:" >&2
      tail -n 40 "$ARTIFACTS/$template-app.log" >&2
      return 1
    fi
    sleep 3
  done
  log "$template app: up after $((SECONDS - waited))s"
  (
    cd "$FERRY_ROOT/e2e-tests"
    FERRY_APP_URL="http://localhost:$frontend_port" FERRY_BACKEND_URL="http://localhost:$backend_port" \
      FERRY_ARTIFACTS="$ARTIFACTS" FERRY_ADOPTER_TEMPLATE="$template" \
      node --test --test-concurrency=1 src/adopter/adopter.test.ts
  )
  stop_app
  flock -u 9
  log "$template app: passed in $((SECONDS - started))s"
}

main() {
  local templates=("$@")
  [ ${#templates[@]} -eq 0 ] && templates=(new legacy)
  local version tarballs
  version="$(create_app_version)"
  [ -n "$version" ] || { echo "adopter: no @backstage/create-app version from the registry and none cached" >&2; exit 1; }
  # `prepare`: only generate and install the apps (npm test does it in the background
  # while the suites on real nodes leave the machine idle).
  if [ "${templates[0]}" = prepare ]; then
    local template
    for template in new legacy; do
      generated_app "$template" "$version" >/dev/null || exit 1
    done
    return
  fi
  if [ -n "${FERRY_ADOPTER_TARBALLS:-}" ]; then
    # Tarballs packed already (npm run release -- pack), e.g. while changing a README.
    tarballs="$(mktemp -d /tmp/ferry-adopter-tarballs.XXXXXX)"
    cp "$FERRY_ADOPTER_TARBALLS"/*.tgz "$tarballs"/
  else
    tarballs="$(mktemp -d /tmp/ferry-adopter-tarballs.XXXXXX)"
    log "packing Ferry's packages (npm run release -- pack)"
    bash "$FERRY_ROOT/scripts/release.sh" pack "$tarballs" >&2
  fi
  local template
  for template in "${templates[@]}"; do
    case "$template" in
      new | legacy) (adopt "$template" "$tarballs" "$version") ;;
      *) echo "adopter: unknown template $template (new or legacy)" >&2; exit 2 ;;
    esac
  done
  rm -rf "$tarballs"
}

main "$@"
