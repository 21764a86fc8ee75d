#!/bin/bash
# First-boot user_data of a server that runs latency, rendered by Terraform's
# templatefile() with latency_target = its LATENCY_TARGET: the second server's
# private IP (the pair), or every other server as NAME=IP (a mesh). It only
# points latency at its targets: it sets LATENCY_TARGET in /etc/default/latency
# (replacing an existing line, else appending one; the rest of the file is
# kept) and restarts the service.
set -euo pipefail
conf=/etc/default/latency
target='${latency_target}'
if grep -q '^LATENCY_TARGET=' "$conf" 2>/dev/null; then
  sed -i "s|^LATENCY_TARGET=.*|LATENCY_TARGET=$target|" "$conf"
else
  printf 'LATENCY_TARGET=%s\n' "$target" >>"$conf"
fi
systemctl restart latency
