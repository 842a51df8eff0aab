#!/usr/bin/env bash
# Build some native targets in a private CMake build directory, writing the
# extension modules next to the sources (src/mediacore/) so that the .venv's
# editable install imports them. Lets several developers build at once without
# sharing a build tree.
#
#   tools/dev-build.sh NAME [TARGET...]      e.g. tools/dev-build.sh opus _opus _resample
#
# With no TARGET it builds everything. Extra CMake options: CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: tools/dev-build.sh NAME [TARGET...]}; shift
dir=build/dev-$name
if [[ ! -f $dir/CMakeCache.txt ]]; then
  cmake -S . -B "$dir" -G Ninja -DPython_EXECUTABLE="$PWD/.venv/bin/python" \
        -DCMAKE_BUILD_TYPE=Release -DHOTLINE_WERROR=ON ${CMAKE_ARGS:-} >/dev/null
fi
if (($#)); then
  cmake --build "$dir" --parallel 2 --target "$@"
else
  cmake --build "$dir" --parallel 2
fi
