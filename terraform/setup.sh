#!/bin/bash
%{ if strcontains(target_ip, "=") ~}
# First-boot user_data of a server of a mesh, rendered by Terraform's templatefile()
# with target_ip = every other server of the mesh as NAME=PRIVATE_IP, comma-separated.
# It only points latency at them: it sets LATENCY_TARGET in /etc/default/latency
# (replacing an existing line, else appending one; the rest of the file is kept) and
# restarts the service.
%{ else ~}
# First-boot user_data of the first server, rendered by Terraform's templatefile()
# with target_ip = the second server's private IP. It only points latency at the
# second server: it sets LATENCY_TARGET in /etc/default/latency (replacing an
# existing line, else appending one; the rest of the file is kept) and restarts
# the service.
%{ endif ~}
set -euo pipefail
conf=/etc/default/latency
target='${target_ip}'
if grep -q '^LATENCY_TARGET=' "$conf" 2>/dev/null; then
  sed -i "s|^LATENCY_TARGET=.*|LATENCY_TARGET=$target|" "$conf"
else
  printf 'LATENCY_TARGET=%s\n' "$target" >>"$conf"
fi
systemctl restart latency
