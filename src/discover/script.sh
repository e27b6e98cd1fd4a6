# boyong discover: what a vendor host serves, read-only, in one pass.
# Sent on stdin to `sh -s -- NONCE`; nothing in it comes from the vendor host or the operator
# but the nonce (hex, made by boyong). It only reads: cat, head, grep, sed, awk, find, test,
# ls, readlink, od, ss, ps, crontab -l and the --version (-v, -m) of php, node, python3,
# apache2, nginx. Each command is bounded in time (timeout) and each output in bytes (head -c).
# Every path is printed hex-encoded in a marker line, `NONCE KIND HEX`; what follows a marker
# until the next one is its content, as data.
N=$1
LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
TO=$(command -v timeout 2>/dev/null)
t() { s=$1; shift; if [ -n "$TO" ]; then "$TO" -k 2 "$s" "$@"; else "$@"; fi; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
mark() { printf '\n%s %s %s\n' "$N" "$1" "$(hex "$2")"; }
# show KIND FILE CAP: the file's text, at most CAP bytes
show() { [ -f "$2" ] && [ -r "$2" ] || return 0; mark "$1" "$2"; t 5 head -c "$3" -- "$2" 2>/dev/null; }
# pick KIND FILE PATTERN: the lines of FILE matching the extended regular expression PATTERN
pick() {
  [ -f "$2" ] && [ -r "$2" ] || return 0
  mark "$1" "$2"; t 5 head -c 1048576 -- "$2" 2>/dev/null | grep -E -- "$3" | head -c 16384
}

mark host ""
printf 'hostname %s\n' "$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null)"
printf 'user %s %s\n' "$(id -un 2>/dev/null)" "$(id -u 2>/dev/null)"
printf 'kernel %s\n' "$(uname -srm 2>/dev/null)"
printf 'os %s\n' "$(. /etc/os-release 2>/dev/null && printf '%s' "$PRETTY_NAME")"
ver() { command -v "$1" >/dev/null 2>&1 && t 5 "$@" 2>&1 | head -1; }
printf 'php %s\n' "$(ver php -v)"
printf 'node %s\n' "$(ver node --version)"
printf 'python %s\n' "$(ver python3 --version)"
printf 'apache %s\n' "$(ver apache2 -v)"
printf 'nginx %s\n' "$(ver nginx -v)"
printf 'now %s\n' "$(date +%s)"

# Web servers' configs (sites-enabled are links: followed by -f and head).
for f in /etc/apache2/sites-enabled/* /etc/apache2/conf-enabled/*.conf /etc/httpd/conf.d/*.conf /etc/httpd/conf/httpd.conf; do
  show apache "$f" 262144
done
mark apachemods ""
t 5 ls -1 /etc/apache2/mods-enabled 2>/dev/null | head -c 16384
for f in /etc/nginx/nginx.conf /etc/nginx/sites-enabled/* /etc/nginx/conf.d/*.conf; do
  show nginx "$f" 262144
done
for f in /etc/php/*/fpm/pool.d/*.conf; do
  pick fpm "$f" '^[[:space:]]*(\[|listen[[:space:]]*=|user[[:space:]]*=|group[[:space:]]*=|chdir[[:space:]]*=)'
done
# PHP: each installed version's FPM extensions (conf.d names), and the CLI's modules.
for d in /etc/php/*/fpm/conf.d; do
  [ -d "$d" ] || continue
  mark phpext "$d"; t 5 ls -1 -- "$d" 2>/dev/null | head -c 16384
done
mark phpmod ""
t 5 php -m 2>/dev/null | head -c 16384

# Services: systemd units (no Environment values: only PORT=N is kept), supervisor programs.
for f in /etc/systemd/system/*.service /etc/systemd/system/*/*.service; do
  [ -f "$f" ] || continue
  mark unit "$f"
  t 5 head -c 65536 -- "$f" 2>/dev/null | grep -E '^[[:space:]]*(\[|Description=|ExecStart=|WorkingDirectory=|User=|Group=)' | head -c 16384
  t 5 head -c 65536 -- "$f" 2>/dev/null | grep -E '^[[:space:]]*Environment=' | grep -oE '(^|[[:space:]"=])PORT=[0-9]+' | sed 's/^[^P]*/Environment=/' | head -5
done
for f in /etc/supervisor/conf.d/*.conf /etc/supervisord.d/*.ini; do
  pick supervisor "$f" '^[[:space:]]*(\[program:|command[[:space:]]*=|directory[[:space:]]*=|user[[:space:]]*=)'
done

# Scheduled jobs.
for f in /etc/crontab /etc/cron.d/* /var/spool/cron/crontabs/* /var/spool/cron/*; do
  pick cron "$f" '^[[:space:]]*[^#[:space:]]'
done
mark crontab ""
t 5 crontab -l 2>/dev/null | grep -E '^[[:space:]]*[^#[:space:]]' | head -c 16384

# Listening TCP ports (with their processes when this login may see them), and processes.
mark ports ""
t 5 ss -Hltnp 2>/dev/null | head -c 262144 || t 5 ss -ltn 2>/dev/null | head -c 262144
mark proctcp ""
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" {print $2}' | head -c 65536
mark ps ""
t 5 ps -eo pid=,user=,args= 2>/dev/null | head -c 262144
mark cwd ""
t 5 ps -eo pid=,comm= 2>/dev/null | awk '$2 ~ /^(node|nodejs|python|python3|gunicorn|uwsgi|uvicorn|PM2|pm2)/ {print $1}' | head -200 |
  while IFS= read -r p; do c=$(readlink "/proc/$p/cwd" 2>/dev/null) && printf '%s %s\n' "$p" "$(hex "$c")"; done

# The directories apps live in: document roots, working directories, the usual places.
roots() {
  for f in /etc/apache2/sites-enabled/* /etc/httpd/conf.d/*.conf; do
    [ -f "$f" ] && t 5 head -c 262144 -- "$f" 2>/dev/null | awk 'tolower($1) == "documentroot" { gsub(/"/, "", $2); print $2 }'
  done
  for f in /etc/nginx/sites-enabled/* /etc/nginx/conf.d/*.conf; do
    [ -f "$f" ] && t 5 head -c 262144 -- "$f" 2>/dev/null | awk '$1 == "root" { sub(/;.*$/, "", $2); gsub(/"/, "", $2); print $2 }'
  done
  for f in /etc/systemd/system/*.service /etc/systemd/system/*/*.service; do
    [ -f "$f" ] && t 5 head -c 65536 -- "$f" 2>/dev/null | sed -n 's/^[[:space:]]*WorkingDirectory=-\{0,1\}//p'
  done
  for f in /etc/supervisor/conf.d/*.conf /etc/supervisord.d/*.ini; do
    [ -f "$f" ] && t 5 head -c 65536 -- "$f" 2>/dev/null | sed -n 's/^[[:space:]]*directory[[:space:]]*=[[:space:]]*//p'
  done
  for f in /etc/php/*/fpm/pool.d/*.conf; do
    [ -f "$f" ] && t 5 head -c 65536 -- "$f" 2>/dev/null | sed -n 's/^[[:space:]]*chdir[[:space:]]*=[[:space:]]*//p'
  done
  t 5 ps -eo pid=,comm= 2>/dev/null | awk '$2 ~ /^(node|nodejs|python|python3|gunicorn|uwsgi|uvicorn)/ {print $1}' | head -200 |
    while IFS= read -r p; do readlink "/proc/$p/cwd" 2>/dev/null; done
  for d in /var/www/* /srv/* /srv/www/* /opt/* /home/*/public_html /home/*/www; do
    [ -d "$d" ] && printf '%s\n' "$d"
  done
}
roots | sed -e 's#/*$##' -e '/^$/d' | awk '{ print } /\/public$/ { sub(/\/public$/, ""); print }' | sort -u | head -300 |
while IFS= read -r d; do
  case $d in /*) ;; *) continue ;; esac
  mark dir "$d"
  [ -d "$d" ] || { echo missing; continue; }
  [ -r "$d" ] && [ -x "$d" ] || { echo unreadable; continue; }
  t 20 find "$d" -xdev -type f -printf '%s %T@\n' 2>/dev/null |
    awk 'BEGIN {n=0; s=0; m=0} {n++; s+=$1; x=int($2); if (x>m) m=x} END {printf "size %d %.0f %d\n", n, s, m}'
  printf 'owner %s\n' "$(stat -c '%U:%G %u:%g' -- "$d" 2>/dev/null)"
  printf 'top %s %s\n' "$(find "$d" -maxdepth 1 -type f -name '*.php' 2>/dev/null | wc -l)" "$(find "$d" -maxdepth 1 -type f -name '*.htm*' 2>/dev/null | wc -l)"
  for m in wp-config.php wp-includes/version.php wp-content/cache wp-content/upgrade wp-content/uploads \
    artisan .env composer.json public/index.php storage/logs storage/framework/sessions storage/framework/cache \
    storage/framework/views bootstrap/cache system/core/CodeIgniter.php application/config/database.php \
    application/cache application/logs spark app/Config/Database.php writable/cache writable/logs writable/session \
    writable/debugbar index.php index.html index.htm package.json node_modules server.js app.js index.js \
    requirements.txt manage.py wsgi.py app.py pyproject.toml .git logs log tmp cache sessions \
    config.php koneksi.php config/config.php config/database.php includes/config.php inc/config.php; do
    [ -e "$d/$m" ] && printf 'has %s\n' "$m"
  done
  pick conf "$d/wp-config.php" "^[[:space:]]*(define[[:space:]]*\\([[:space:]]*['\"](DB_NAME|DB_USER|DB_HOST|DB_CHARSET|WP_HOME|WP_SITEURL)['\"]|\\\$table_prefix)"
  pick conf "$d/wp-includes/version.php" '^\$wp_version'
  # DATABASE_URL without its password
  pick conf "$d/.env" '^[[:space:]]*(export[[:space:]]+)?(APP_NAME|APP_ENV|APP_URL|DB_CONNECTION|DB_HOST|DB_PORT|DB_DATABASE|DB_NAME|DB_USERNAME|DB_USER|PORT|NODE_ENV|DATABASE_URL|database\.default\.(hostname|database|username|DBDriver|port)|app\.baseURL)[[:space:]]*=' |
    sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'
  for c in application/config/database.php app/Config/Database.php; do
    pick conf "$d/$c" "^[[:space:]]*(public[[:space:]]+)?['\"\$]?[A-Za-z_\\[\\]'\"]*(hostname|username|database|dbdriver|DBDriver|port)['\"]?[[:space:]]*(=>|=)"
  done
  pick conf "$d/application/config/config.php" "config\\[['\"]base_url['\"]\\]"
  pick conf "$d/system/core/CodeIgniter.php" "CI_VERSION"
  for c in config.php koneksi.php config/config.php config/database.php includes/config.php inc/config.php; do
    f="$d/$c"; [ -f "$f" ] && [ -r "$f" ] || continue
    mark conf "$f"
    t 5 head -c 1048576 -- "$f" 2>/dev/null | grep -E "(define[[:space:]]*\\(|\\\$[A-Za-z_]+[[:space:]]*=|=>)" |
      grep -iE 'host|user|name|database|port|driver' | grep -viE 'pass|pwd|secret|key|token|salt|auth' | head -c 16384
  done
  show conf "$d/package.json" 16384
  show conf "$d/composer.json" 16384
  show conf "$d/requirements.txt" 4096
done
mark end ""
