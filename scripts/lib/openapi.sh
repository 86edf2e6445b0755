# shellcheck shell=bash
# Ferry's REST types, generated once from the contract (plugins/ferry-backend/src/schema/openapi.yaml).
# The models and the typed client live in ferry-common; the backend's generated router imports
# its models from there, so each REST type has one definition that the backend, the frontend
# and the tests share.

# The folders the generator writes; `check` compares them with what is committed.
FERRY_OPENAPI_GENERATED=(
  plugins/ferry-common/src/schema/openapi
  plugins/ferry-backend/src/schema/openapi
)

# Generates the router (backend) and the models and client (ferry-common) from the contract,
# as the Backstage repository generates its own: `backstage-repo-tools package schema openapi
# generate`, which runs openapi-generator on Java. Then the backend's copy of the models goes.
ferry_openapi_generate() {
  ferry_system_packages openjdk-17-jre-headless
  local output
  # repo-tools reports a failed generation on stdout and still exits 0: its output is read.
  output="$(cd "$FERRY_ROOT/plugins/ferry-backend" &&
    "$FERRY_ROOT/node_modules/.bin/backstage-repo-tools" package schema openapi generate \
      --server --client-package plugins/ferry-common 2>&1)" || {
    printf '%s\n' "$output" >&2
    return 1
  }
  printf '%s\n' "$output" >&2
  if grep -q 'generation failed' <<<"$output"; then
    ferry_log "generating the REST types failed (above)"
    return 1
  fi
  node "$FERRY_ROOT/scripts/lib/openapiSharedModels.mjs" \
    "$FERRY_ROOT/plugins/ferry-backend/src/schema/openapi/generated" @ferry/plugin-ferry-common
  "$FERRY_ROOT/node_modules/.bin/prettier" --write \
    "$FERRY_ROOT/plugins/ferry-backend/src/schema/openapi/generated/apis" >/dev/null
}

# Fails, naming the files, when the committed generated files are not what the contract
# generates (an edited yaml without `bash scripts/ferry openapi`, or a hand edit).
ferry_openapi_check() {
  ferry_openapi_generate
  local stale
  stale="$(cd "$FERRY_ROOT" && git status --porcelain -- "${FERRY_OPENAPI_GENERATED[@]}")"
  if [ -n "$stale" ]; then
    (cd "$FERRY_ROOT" && git --no-pager diff --stat -- "${FERRY_OPENAPI_GENERATED[@]}") >&2
    ferry_log "the generated REST types are not in step with src/schema/openapi.yaml:"
    printf '%s\n' "$stale" >&2
    ferry_log "run 'bash scripts/ferry openapi' and commit what it writes"
    return 1
  fi
  ferry_log "the generated REST types match the contract"
}
