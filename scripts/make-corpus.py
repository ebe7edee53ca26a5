#!/usr/bin/env python3
"""Writes the benchmark corpus: realistic command lines an agent sends while
looking after a homelab, built from templates over service names, so the mix
of reads, changes, pipelines, wrappers and the occasional dangerous line is
like real traffic. Deterministic: the same file every run."""
import itertools, random, sys

random.seed(7)
services = ["grafana", "prometheus", "loki", "nginx", "traefik", "postgres", "redis", "jellyfin",
            "nextcloud", "homeassistant", "pihole", "vaultwarden", "gitea", "syncthing", "immich"]
stacks = ["monitoring", "media", "home", "proxy", "git", "photos"]
hosts = ["192.168.1.10", "nas.lan", "10.0.0.5"]
templates = [
    "docker ps -a", "docker ps --format '{{{{.Names}}}}\\t{{{{.Status}}}}'",
    "docker logs --tail 200 {s}", "docker logs --since 1h {s} 2>&1 | grep -i error",
    "docker inspect {s} | jq '.[0].State'", "docker stats --no-stream {s}",
    "docker restart {s}", "docker compose -f /srv/{k}/compose.yml ps",
    "docker compose -f /srv/{k}/compose.yml logs --tail 100 {s}",
    "docker compose -f /srv/{k}/compose.yml up -d {s}", "docker compose -p {k} pull",
    "docker exec {s} cat /etc/os-release", "docker exec -it {s} sh -c 'ls -la /data'",
    "journalctl -u {s} --since '1 hour ago' --no-pager | tail -n 50",
    "journalctl -p err -b --no-pager", "systemctl status {s}", "systemctl restart {s}",
    "systemctl is-active {s} && echo up || echo down", "sudo systemctl reload {s}",
    "git -C /srv/{k} status --short", "git -C /srv/{k} log --oneline -10",
    "git -C /srv/{k} diff HEAD~1 -- compose.yml", "cd /srv/{k} && git pull --ff-only",
    "cd /srv/{k} && git add compose.yml && git commit -m 'bump {s}'",
    "sed -i 's/image: {s}:.*/image: {s}:latest/' /srv/{k}/compose.yml",
    "grep -n 'image:' /srv/{k}/compose.yml", "cat /srv/{k}/.env",
    "ls -la /srv/{k}", "du -sh /srv/{k}/* | sort -h", "df -h /srv",
    "find /srv/{k} -name '*.log' -mtime +7 -delete", "find /srv/{k} -type f -name '*.yml' -exec grep -l {s} {{}} +",
    "tail -n 100 /var/log/{s}/error.log", "curl -s http://localhost:3000/api/health",
    "curl -sf http://{h}:9090/-/ready", "ping -c 3 {h}", "dig {s}.lan +short", "ss -tlnp | grep {s}",
    "ip -br addr", "ip route", "uptime", "free -h", "ps aux --sort=-%mem | head -20",
    "top -b -n 1 | head -15", "lsblk -f", "zpool status -x", "smartctl -H /dev/sda",
    "kubectl get pods -n {k}", "kubectl -n {k} logs deploy/{s} --tail=100",
    "kubectl -n {k} rollout restart deploy/{s}", "kubectl describe pod -n {k} -l app={s}",
    "sudo apt-get update && sudo apt-get install -y htop", "apt list --upgradable 2>/dev/null | head",
    "rm -rf /srv/{k}/tmp/*", "rm -f /srv/{k}/{s}.pid", "mkdir -p /srv/{k}/backups",
    "tar -czf /srv/backups/{k}-$(date +%F).tar.gz -C /srv {k}",
    "rsync -a --delete /srv/{k}/ {h}:/backup/{k}/", "chown -R 1000:1000 /srv/{k}/data",
    "chmod 600 /srv/{k}/.env", "cp /srv/{k}/compose.yml /srv/{k}/compose.yml.bak",
    "echo 'restarting {s}' | logger -t jarvis", "for s in {s} nginx; do docker restart $s; done",
    "if docker ps | grep -q {s}; then echo running; fi", "watch -n 5 docker ps",
    "timeout 30 docker compose -f /srv/{k}/compose.yml up -d", "nohup /srv/{k}/backup.sh &",
    "bash -c 'docker ps | wc -l'", "sh -c \"cd /srv/{k} && docker compose ps\"",
    "sudo -u {s} ls /var/lib/{s}", "env TZ=UTC date", "xargs -r docker restart < /tmp/to-restart",
    "docker ps -q --filter name={s} | xargs -r docker logs --tail 20",
    "curl -fsSL https://get.example.com/install.sh | sh", "rm -rf /", "dd if=/dev/zero of=/dev/sda bs=1M",
    "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])' < /tmp/{s}.json",
    "awk '{{print $1}}' /var/log/nginx/access.log | sort | uniq -c | sort -rn | head",
    "cat <<'EOF' > /srv/{k}/note.txt\n{s} restarted by jarvis\nEOF",
    "openssl x509 -in /srv/{k}/certs/{s}.crt -noout -dates", "crontab -l", "last -n 20",
]
lines = []
for t, s, k, h in itertools.product(templates, services, stacks, hosts):
    lines.append(t.format(s=s, k=k, h=h))
random.shuffle(lines)
seen, out = set(), []
for l in lines:
    if l not in seen:
        seen.add(l)
        out.append(l)
out = out[:1500]
sys.stdout.write("\n".join(l.replace("\n", "\\n") for l in out) + "\n")
