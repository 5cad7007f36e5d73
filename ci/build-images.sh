#!/usr/bin/env bash
# Builds and tags every image of the stack: each service of docker-compose.yml with a `build:`
# section, tagged with the git revision (or --tag), and pushes them when a registry is given.
#
#   ci/build-images.sh                      # taxi-platform/user-code:<rev>, taxi-platform/dagster:<rev>
#   ci/build-images.sh --tag 1.2.0 --latest # also tag :latest (what a plain `docker compose up` uses)
#   REGISTRY=ghcr.io/acme ci/build-images.sh --push
#                                            # ghcr.io/acme/taxi-platform/user-code:<rev>, ... pushed
#
# PYTHON_BASE_IMAGE (default python:3.11-slim) selects the base image of every Dockerfile.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

tag=""
push=0
latest=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --push) push=1; shift ;;
    --latest) latest=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ -z $tag ]]; then
  if rev=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    tag=$rev
    [[ -z $(git status --porcelain --untracked-files=no) ]] || tag="$rev-dirty"
  else
    tag=dev
  fi
fi

# image names: the TAXI_*_IMAGE defaults of .env.example, prefixed with the registry if one is given
prefix=${REGISTRY:+${REGISTRY%/}/}
while IFS='=' read -r key value; do
  export "$key=${prefix}${value}"
done < <(grep -E '^TAXI_[A-Z_]+_IMAGE=' .env.example)
export TAXI_IMAGE_TAG=$tag
export PYTHON_BASE_IMAGE=${PYTHON_BASE_IMAGE:-python:3.11-slim}

# compose insists on the credentials even to build: give it a throwaway env file
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 ci/make_env.py --out "$work/build.env" >/dev/null
compose=(docker compose --project-name taxi-platform-build --env-file "$work/build.env" --file docker-compose.yml)

echo "building images tagged $tag (base $PYTHON_BASE_IMAGE)" >&2
start=$(date +%s)
"${compose[@]}" build
echo "built in $(( $(date +%s) - start ))s:" >&2

# the images compose builds (services with a `build:` section), not the ones it pulls
images=$("${compose[@]}" config --format json | python3 -c '
import json, sys
services = json.load(sys.stdin)["services"].values()
print("\n".join(sorted({s["image"] for s in services if "build" in s})))')
for image in $images; do
  echo "  $image  $(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')" >&2
  if [[ $latest == 1 ]]; then
    docker tag "$image" "${image%:*}:latest"
  fi
done

if [[ $push == 1 ]]; then
  [[ -n ${REGISTRY:-} ]] || { echo "build-images.sh: --push needs REGISTRY" >&2; exit 2; }
  for image in $images; do
    docker push "$image"
    [[ $latest == 0 ]] || docker push "${image%:*}:latest"
  done
fi
