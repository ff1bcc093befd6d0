#!/usr/bin/env bash
# The headless browser of the web console's tests (tests/integration/test_console_*.py): Debian's
# chromium and chromium-driver, driven by Selenium. Installed with apt-get when missing and this
# runs as root (~2 min); otherwise it says how, and those tests skip (they fail when CI is set).
# Idempotent: nothing to do once /usr/bin/chromium and /usr/bin/chromedriver exist.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "install_browser: installing chromium and chromium-driver with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "install_browser: no /usr/bin/chromium or /usr/bin/chromedriver; as root on Debian/Ubuntu:" \
    "apt-get install -y chromium chromium-driver (the console's browser tests skip until then)" >&2
fi
