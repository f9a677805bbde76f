#!/usr/bin/env bash
# Set up everything wsgi-baseline needs on Debian/Ubuntu, then run a job.
#
#   ./bootstrap.sh run     install, run the default short benchmark, build the site
#   ./bootstrap.sh test    install (with test tools), run lint, type checks and all tests
#   ./bootstrap.sh setup   install only
#
# Idempotent: apt packages are installed only when missing, the virtualenv only when
# pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")"
job=${1:-run}
case "$job" in run|test|setup) ;; *) echo "usage: $0 run|test|setup" >&2; exit 2 ;; esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# wrk drives the load; build tools and libev headers compile uWSGI and bjoern.
apt_pkgs=(wrk build-essential python3-dev python3-venv libev-dev git)
# The test suite also looks at the site in a real browser and runs an sshd and nginx.
[ "$job" = test ] && apt_pkgs+=(chromium openssh-server openssh-client nginx-light)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing with apt: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
hash=$(cat pyproject.toml bootstrap.sh | sha256sum | cut -c1-16)
stamp=".venv/.installed-$hash"
log=.venv/install.log
pip_install() {
  .venv/bin/python -m pip install -q "$@" >>"$log" 2>&1 || {
    tail -n 40 "$log" >&2; echo "error: pip install $* failed (full log: $log)" >&2; exit 1; }
}
if [ ! -f "$stamp" ]; then
  echo "== creating the virtualenv .venv (pinned versions from pyproject.toml)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  pip_install --upgrade pip
  pip_install -e ".[apps,dev]"
  # Servers one by one: one that cannot be built here (uWSGI and bjoern compile C) must
  # not stop the others. The bench records a missing server as unavailable, with the
  # reason, on every cell it would have run; nothing is skipped silently.
  servers=$(.venv/bin/python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["servers"]))')
  for req in $servers; do
    .venv/bin/python -m pip install -q "$req" >>"$log" 2>&1 ||
      echo "warning: could not install $req on this machine (see $log); its cells will be recorded as failed" >&2
  done
  # meinheld 1.0.2 pins greenlet 0.4.17, which does not build on Python >= 3.11;
  # the current greenlet (installed above) works with it.
  .venv/bin/python -m pip install -q --no-deps "meinheld==1.0.2" >>"$log" 2>&1 ||
    echo "warning: could not install meinheld==1.0.2 (see $log); its cells will be recorded as failed" >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The tests build the site with both engines: the test set-up adds the second one.
if [ "$job" = test ] && [ ! -f "$stamp-site-engines" ]; then
  echo "== installing the second site engine (Zensical, the site-engines extra)"
  pip_install -e ".[site-engines]"
  touch "$stamp-site-engines"
fi
export PATH="$PWD/.venv/bin:$PATH" NO_MKDOCS_2_WARNING=1

case "$job" in
  run)
    invoke bench
    invoke build-site
    echo "== the site is in $PWD/site/ (open $PWD/site/index.html, or: invoke serve-site)"
    ;;
  test)
    # Everything the tests need is installed by now: a skipped test is a failure.
    WSGI_BASELINE_NO_SKIP=1 invoke test
    ;;
  setup)
    echo "== ready: . .venv/bin/activate; invoke --list"
    ;;
esac
