#!/usr/bin/env bash
# The image's build context (the repository minus .dockerignore) holds every file the build
# needs: configure it the way deploy/docker/Dockerfile does and check that every input ninja
# would read exists (a file the build embeds, like db/migrations or docs/api/openapi.yaml, must
# not be dropped by .dockerignore).
#
#   image_context_test.sh <source dir> <scratch dir>
set -euo pipefail

src=$(cd "$1" && pwd)
scratch=$2
cmake_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNAPS_BUILD_TESTS=OFF)

dockerfile=$src/deploy/docker/Dockerfile
for flag in "${cmake_flags[@]}"; do
  grep -q -- "$flag" "$dockerfile" || {
    echo "$dockerfile no longer builds with $flag: update this test" >&2
    exit 1
  }
done

# .dockerignore patterns, in the simple forms the file uses: "/x", "x", "**/*.ext".
patterns=()
while IFS= read -r line; do
  line=${line%%#*}
  line=$(echo "$line" | tr -d '[:space:]')
  [ -n "$line" ] && patterns+=("${line#/}")
done < "$src/.dockerignore"

ignored() {
  local path=$1 p
  for p in "${patterns[@]}"; do
    p=${p#\*\*/}
    # shellcheck disable=SC2053
    if [[ $path == $p || $path == $p/* || ${path##*/} == $p ]]; then return 0; fi
  done
  return 1
}

if ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout: cannot tell the repository's files from local ones; skipped"
  exit 77
fi

rm -rf "$scratch"
mkdir -p "$scratch/context"
cd "$src"
count=0
while IFS= read -r path; do
  [ -e "$path" ] || continue
  ignored "$path" && continue
  mkdir -p "$scratch/context/$(dirname "$path")"
  cp -P "$path" "$scratch/context/$path"
  count=$((count + 1))
done < <(git ls-files --cached --others --exclude-standard)
echo "build context: $count files"

cmake -S "$scratch/context" -B "$scratch/build" -G Ninja "${cmake_flags[@]}" > "$scratch/configure.log" 2>&1 || {
  cat "$scratch/configure.log" >&2
  exit 1
}
# Every source file the synaps target is built from must be in the context. Files the build
# itself produces in the source tree (the console's web/node_modules from `npm ci`) are outputs
# of a build edge, not sources, and are skipped.
declare -A generated=()
while IFS= read -r output; do
  generated[$output]=1
done < <(ninja -C "$scratch/build" -t targets all | sed 's/: [^:]*$//')
missing=0
while IFS= read -r input; do
  case "$input" in
    "$scratch/context/"*)
      if [ ! -e "$input" ] && [ -z "${generated[$input]:-}" ]; then
        echo "MISSING from the build context: ${input#"$scratch/context/"}" >&2
        missing=1
      fi ;;
  esac
done < <(ninja -C "$scratch/build" -t inputs synaps)
if [ "$missing" = 0 ]; then
  echo "the image's build context holds every input of the synaps build"
fi
exit $missing
