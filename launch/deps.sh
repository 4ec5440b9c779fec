# Sourced by launch/train.sh and tests/run.sh: makes sure the Debian packages polyhead
# builds with are installed. As root it installs the missing ones with apt-get; otherwise it
# prints the exact command to run and stops.
POLYHEAD_PACKAGES="cmake make g++ pkg-config libopenmpi-dev openmpi-bin libyaml-cpp-dev \
libhdf5-openmpi-dev hdf5-tools libopenblas-dev libgtest-dev"

polyhead_ensure_packages() {
  local missing=() p
  for p in $POLYHEAD_PACKAGES "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "polyhead: missing packages: ${missing[*]}" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "polyhead: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
