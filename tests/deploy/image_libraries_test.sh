#!/usr/bin/env bash
# The runtime stage of deploy/docker/Dockerfile installs enough Debian packages for the synaps
# binary: every shared library the binary loads belongs to one of those packages or to their
# dependencies. Docker cannot run here, so this reads the same Debian metadata apt would use
# (dpkg's database of this bookworm machine).
#
#   image_libraries_test.sh <synaps binary> <Dockerfile>
set -euo pipefail

binary=$1
dockerfile=$2

# Packages of the last `apt-get install` in the file (the runtime stage): its words up to the
# next `&&`, options left out.
runtime=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" | grep 'apt-get install' | tail -1 |
  sed -E 's/.*apt-get install//; s/&&.*//' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u)
if [ -z "$runtime" ]; then
  echo "no runtime packages found in $dockerfile" >&2
  exit 1
fi
echo "runtime packages: $(echo $runtime)"

# Their dependency closure, from dpkg's records of the installed packages.
declare -A closure=()
queue=($runtime)
while [ ${#queue[@]} -gt 0 ]; do
  pkg=${queue[0]}
  queue=("${queue[@]:1}")
  [ -n "${closure[$pkg]:-}" ] && continue
  closure[$pkg]=1
  deps=$(dpkg-query -W -f='${Depends},${Pre-Depends}' "$pkg" 2>/dev/null || true)
  if [ -z "$deps" ] && ! dpkg-query -W "$pkg" >/dev/null 2>&1; then
    echo "package $pkg is not installed here, cannot check it" >&2
    exit 1
  fi
  for dep in $(echo "$deps" | tr ',|' '\n\n' | sed -E 's/\(.*\)//; s/:any//; s/ //g' | grep -v '^$'); do
    [ -z "${closure[$dep]:-}" ] && queue+=("$dep")
  done
done

missing=0
while read -r lib path; do
  real=$(readlink -f "$path")
  owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
  pkg=${owner%%:*}
  if [ -z "$pkg" ]; then
    echo "MISSING: $lib ($path) belongs to no Debian package" >&2
    missing=1
  elif [ -z "${closure[$pkg]:-}" ]; then
    echo "MISSING: $lib comes from $pkg, which the runtime stage does not install" >&2
    missing=1
  fi
done < <(ldd "$binary" | awk '/=>/ && $3 ~ /^\// { print $1, $3 }')
ldd "$binary" | grep "not found" && missing=1
if [ "$missing" = 0 ]; then
  echo "every shared library of $binary is installed by the runtime stage"
fi
exit $missing
