#!/usr/bin/env bash
# Check the ClickHouse server that ccusage-import writes to, over its HTTP interface with curl only.
# The password goes to curl in a config read from stdin, so it is never on a command line (ps shows those).
# Runs with the bash 3.2 of macOS too.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./verify_setup.sh [--stale-hours N]

Checks the ClickHouse server of ccusage-import over HTTP(S) with curl (no Python, no clickhouse-client):
connectivity and version, every ccusage_ table and its row count, the ccusage_v_daily_summary view over the
last 7 days, how fresh each machine's last import is (from ccusage_import_runs), and whether ccusage can run
on this machine (ccusage, bunx or npx on PATH).

Reads the importer's settings: CH_HOST, CH_PORT (default 8123), CH_USER (default default), CH_PASSWORD,
CH_DATABASE (default default), CH_PROTOCOL (http or https; default https on ports 443 and 8443, else http).
Without CH_HOST the importer uses its embedded store, which has no HTTP interface: the script says to run
`uv run ccusage_importer.py --check` instead, and exits 0.

  --stale-hours N  a machine whose last successful import is older than N hours is flagged (default 2)
  -h, --help       this text

Exit codes:
  0  every check passed (flagged machines and a missing ccusage are warnings, marked ⚠️), or no CH_HOST
  1  a check failed (marked ❌): server unreachable, login refused, a table or the view missing
  2  bad configuration or usage: CH_HOST, CH_PORT, CH_DATABASE, CH_PROTOCOL not valid, curl missing, or the
     answer is not from a ClickHouse server (a web server or another service on that port)

Nothing it prints shows the password: not as typed, and not URL-encoded, hex, JSON-escaped or base64 (alone, or
as user:password in an Authorization header), even when a server or proxy echoes the request back.
EOF
}

# every ccusage_ table of ccusage_clickhouse_schema.sql, in its order (tests/test_one_list.py holds them equal)
TABLES="ccusage_schema_migrations ccusage_settings ccusage_usage_daily ccusage_usage_monthly ccusage_usage_sessions
ccusage_usage_blocks ccusage_usage_hourly ccusage_usage_projects_daily ccusage_model_breakdowns ccusage_models_used
ccusage_import_runs
ccusage_alerts"
FAILED=0
STALE_HOURS=2
SECRET_FORMS=()

die() {
  printf 'verify_setup.sh: %s\n' "$(redact "$2")" >&2
  exit "$1"
}

# Every line goes out through here, so nothing a server sends back can show the password.
say() { printf '%s\n' "$(redact "$1")"; }
ok() { say "✅ $1"; }
warn() { say "⚠️ $1"; }
fix() { say "   fix: $1"; }
fail() {
  say "❌ $1"
  FAILED=1
}

add_secret_form() {
  if [ -n "$1" ]; then
    SECRET_FORMS[${#SECRET_FORMS[@]}]=$1
  fi
}

base64_of() {
  printf '%s' "$1" | base64 | tr -d '\n'
}

# Base64 as sent (padded), without padding (a prefix of the padded form, so it also covers a different ending),
# and in the URL-safe alphabet.
add_base64_forms() {
  local encoded
  encoded=$(base64_of "$1")
  add_secret_form "$encoded"
  add_secret_form "$(printf '%s' "$encoded" | tr '+/' '-_')"
  add_secret_form "${encoded%%=*}"
}

# The password percent-encoded, from its hex bytes: %XX and %xx for every byte but the unreserved ones
# (A-Z a-z 0-9 - . _ ~), and the form encoding that writes a space as +.
add_url_forms() {
  local hex=$1 upper='' lower='' plus='' pair char
  while [ -n "$hex" ]; do
    pair=${hex:0:2}
    hex=${hex:2}
    case $pair in
      3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f | 7e)
        printf -v char '%b' "\\x$pair"
        upper+=$char lower+=$char plus+=$char
        ;;
      *)
        char=$(printf '%s' "$pair" | tr a-f A-F)
        upper+="%$char" lower+="%$pair"
        if [ "$pair" = 20 ]; then plus+=+; else plus+="%$char"; fi
        ;;
    esac
  done
  add_secret_form "$upper"
  add_secret_form "$lower"
  add_secret_form "$plus"
}

# The password as the content of a JSON string, as JSON writers escape it: \\ \" \b \f \n \r \t, other control
# characters as \u00XX, and DEL and characters beyond ASCII kept or, by ASCII-only writers, as \uXXXX (a surrogate
# pair beyond U+FFFF). Decoded as UTF-8 from the password's hex bytes, so the result does not depend on the locale.
add_json_forms() {
  local hex=$1 kept='' ascii='' pair byte code more bytes char
  while [ -n "$hex" ]; do
    pair=${hex:0:2}
    hex=${hex:2}
    byte=$((16#$pair))
    if [ "$byte" -lt 128 ]; then
      case $byte in
        8) char='\b' ;;
        9) char='\t' ;;
        10) char='\n' ;;
        12) char='\f' ;;
        13) char='\r' ;;
        34) char='\"' ;;
        92) char=\\\\ ;;
        *) if [ "$byte" -lt 32 ]; then printf -v char '\\u%04x' "$byte"; else printf -v char '%b' "\\x$pair"; fi ;;
      esac
      kept+=$char
      if [ "$byte" = 127 ]; then ascii+='\u007f'; else ascii+=$char; fi
      continue
    fi
    if [ "$byte" -ge 240 ]; then
      code=$((byte & 7)) more=3
    elif [ "$byte" -ge 224 ]; then
      code=$((byte & 15)) more=2
    elif [ "$byte" -ge 192 ]; then
      code=$((byte & 31)) more=1
    else
      code=$byte more=0
    fi
    bytes="\\x$pair"
    while [ "$more" -gt 0 ] && [ -n "$hex" ]; do
      pair=${hex:0:2}
      hex=${hex:2}
      code=$(((code << 6) | (16#$pair & 63)))
      bytes+="\\x$pair"
      more=$((more - 1))
    done
    printf -v char '%b' "$bytes"
    kept+=$char
    if [ "$code" -le 65535 ]; then
      printf -v char '\\u%04x' "$code"
    else
      code=$((code - 65536))
      printf -v char '\\u%04x\\u%04x' $((55296 + (code >> 10))) $((56320 + (code & 1023)))
    fi
    ascii+=$char
  done
  add_secret_form "$kept"
  add_secret_form "$ascii"
}

# Every form in which a server or proxy can echo the credentials back, each before the shorter forms it may
# contain (the password as typed last). A password shorter than 3 characters is only hidden inside user:password:
# replacing it everywhere would garble the output without protecting anything.
secret_forms() {
  local hex
  [ -n "$CH_PASSWORD" ] || return 0
  add_base64_forms "$CH_USER:$CH_PASSWORD"
  [ ${#CH_PASSWORD} -ge 3 ] || return 0
  hex=$(printf '%s' "$CH_PASSWORD" | od -An -v -tx1 | tr -d ' \n')
  add_url_forms "$hex"
  add_secret_form "$(printf '%s' "$hex" | tr a-f A-F)"
  add_secret_form "$hex"
  add_base64_forms "$CH_PASSWORD"
  add_json_forms "$hex"
  add_secret_form "$CH_PASSWORD"
}

redact() {
  local text=$1 form
  for form in ${SECRET_FORMS[@]+"${SECRET_FORMS[@]}"}; do
    text=${text//"$form"/***}
  done
  printf '%s' "$text"
}

# A string for curl's config syntax: in double quotes, backslash, quote and control characters escaped.
curl_quote() {
  local text=$1
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  text=${text//$'\t'/\\t}
  printf '"%s"' "$text"
}

parse_options() {
  while [ $# -gt 0 ]; do
    case $1 in
      --stale-hours)
        [ $# -ge 2 ] || die 2 "--stale-hours needs a number of hours"
        case $2 in '' | *[!0-9]*) die 2 "--stale-hours must be a whole number of hours, not $2" ;; esac
        STALE_HOURS=$2
        shift
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die 2 "unknown option $1 (see --help)" ;;
    esac
    shift
  done
}

# Validate the settings before any of them reaches a URL or a query.
read_settings() {
  CH_HOST=${CH_HOST:-}
  CH_PASSWORD=${CH_PASSWORD:-}
  CH_USER=${CH_USER:-default}
  CH_DATABASE=${CH_DATABASE:-default}
  CH_PORT=${CH_PORT:-8123}
  local protocol=${CH_PROTOCOL:-}
  case $CH_HOST in
    '' | -* | *[!A-Za-z0-9.:-]*) die 2 "CH_HOST='$CH_HOST' is not a host name or IP address (letters, digits, . - :)" ;;
  esac
  case $CH_PORT in
    '' | *[!0-9]* | 0 | 0*) die 2 "CH_PORT='$CH_PORT' is not a port number (1-65535)" ;;
  esac
  if [ "${#CH_PORT}" -gt 5 ] || [ "$CH_PORT" -gt 65535 ]; then
    die 2 "CH_PORT='$CH_PORT' is not a port number (1-65535)"
  fi
  case $CH_PORT in
    9000 | 9440) die 2 "CH_PORT=$CH_PORT is ClickHouse's native-protocol port; this script and the importer speak HTTP: use the HTTP port, usually 8123 (or 8443 for HTTPS)" ;;
  esac
  case $CH_DATABASE in
    [A-Za-z_]*) ;;
    *) die 2 "CH_DATABASE='$CH_DATABASE' is not a plain database name (letters, digits, _)" ;;
  esac
  case $CH_DATABASE in
    *[!A-Za-z0-9_]*) die 2 "CH_DATABASE='$CH_DATABASE' is not a plain database name (letters, digits, _)" ;;
  esac
  case $protocol in
    https) SCHEME=https ;;
    http) SCHEME=http ;;
    '') if [ "$CH_PORT" = 443 ] || [ "$CH_PORT" = 8443 ]; then SCHEME=https; else SCHEME=http; fi ;;
    *) die 2 "CH_PROTOCOL='$protocol' must be http or https" ;;
  esac
  local host=$CH_HOST
  case $host in *:*) host="[$host]" ;; esac
  SERVER="$SCHEME://$host:$CH_PORT"
  URL="$SERVER/?database=$CH_DATABASE"
  secret_forms
}

# Run one static query. Sets STATUS (HTTP code, 000 when there was no answer), BODY, CONTENT_TYPE and ELAPSED_MS;
# the answer's headers stay in HEADER_FILE.
query() {
  local sql=$1 out
  out=$(printf 'user = %s\n' "$(curl_quote "$CH_USER:$CH_PASSWORD")" |
    curl --config - --silent --show-error --connect-timeout 5 --max-time 30 --output "$BODY_FILE" \
      --dump-header "$HEADER_FILE" --write-out '%{http_code} %{time_total} %{content_type}' \
      --data-binary "$sql" "$URL" 2>"$ERROR_FILE") || true
  STATUS=${out%% *}
  [ -n "$STATUS" ] || STATUS=000
  out=${out#* }
  ELAPSED_MS=$(printf '%s' "${out%% *}" | LC_ALL=C awk '{ printf "%d", $1 * 1000 }')
  CONTENT_TYPE=$(printf '%s' "${out#* }" | LC_ALL=C tr -cd 'A-Za-z0-9/;=._+ -' | cut -c 1-80)
  if [ "$STATUS" = 000 ]; then
    BODY=$(tr -d '\r' <"$ERROR_FILE")
  else
    BODY=$(LC_ALL=C tr -d '\000' <"$BODY_FILE")
  fi
  [ "$STATUS" = 200 ]
}

# The first line of a failed answer: password removed before it is cut (a cut could leave part of a secret),
# control characters dropped.
problem() {
  local first
  first=$(printf '%s\n' "$BODY" | head -n 1)
  redact "$first" | cut -c 1-300 | LC_ALL=C tr -d '\000-\010\013-\037\177'
}

# ClickHouse names itself in X-ClickHouse-* headers on every answer; without them (a proxy that drops headers),
# an error body in ClickHouse's own format ("Code: 81, ..." or "Code: 81. DB::Exception: ...") is enough.
answered_by_clickhouse() {
  grep -qi '^x-clickhouse-' "$HEADER_FILE" 2>/dev/null && return 0
  case $BODY in
    "Code: "[0-9]*) return 0 ;;
  esac
  return 1
}

# A ClickHouse version: numbers joined by dots, perhaps with a build's suffix (18.16.1, 24.8.4.13,
# 23.8.16.42.altinitystable), one short word.
is_version() {
  [ ${#1} -le 64 ] || return 1
  case $1 in
    *[!0-9A-Za-z._+-]*) return 1 ;;
    [0-9]*.[0-9]*) return 0 ;;
  esac
  return 1
}

# Exit 2 with one line: the answer to SELECT version() came from something else (a web server, another service,
# a proxy's error page), so checking tables there would only call every one of them missing.
not_clickhouse() {
  die 2 "$SERVER is not a ClickHouse server: it answered SELECT version() with HTTP $STATUS (${CONTENT_TYPE:-no content type}) and $1; check CH_HOST, CH_PORT and CH_PROTOCOL"
}

check_connection() {
  if query "SELECT version()"; then
    is_version "$BODY" || not_clickhouse "not a version number"
    ok "server: ClickHouse $BODY at $SERVER answered in $ELAPSED_MS ms"
    return 0
  fi
  [ "$STATUS" = 000 ] || answered_by_clickhouse || not_clickhouse "no X-ClickHouse-* header"
  case $STATUS in
    000) fail "server: no answer from $SERVER: $(problem)"
      fix "check CH_HOST and CH_PORT (the HTTP port, usually 8123; 8443 for HTTPS), and that the server runs" ;;
    401 | 403) fail "server: $SERVER refused user $CH_USER: $(problem)"
      fix "check CH_USER and CH_PASSWORD" ;;
    *)
      fail "server: $SERVER answered HTTP $STATUS: $(problem)"
      case $BODY in
        *"atabase"*"doesn't exist"* | *UNKNOWN_DATABASE*)
          fix "create it (CREATE DATABASE $CH_DATABASE) or set CH_DATABASE" ;;
        *Authentication* | *password*) fix "check CH_USER and CH_PASSWORD" ;;
      esac
      ;;
  esac
  return 1
}

check_tables() {
  local table present
  query "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'ccusage%'" || {
    fail "tables: cannot list them: $(problem)"
    return 0
  }
  present=" $(printf '%s' "$BODY" | tr '\n' ' ') "
  for table in $TABLES; do
    case $present in
      *" $table "*) ;;
      *)
        fail "$table: missing"
        fix "run an import against this server once (uv run ccusage_importer.py), it creates the schema"
        continue
        ;;
    esac
    # $table is one of the constant names above, never a value read from outside.
    if query "SELECT count() FROM $table"; then
      ok "$table: $BODY rows"
    else
      fail "$table: cannot count its rows: $(problem)"
    fi
  done
}

check_view() {
  local rows cost
  if query "SELECT count(), round(sum(total_cost), 2) FROM ccusage_v_daily_summary WHERE date >= today() - 7"; then
    rows=$(printf '%s' "$BODY" | cut -f 1)
    cost=$(printf '%s' "$BODY" | cut -f 2)
    ok "ccusage_v_daily_summary: $rows machine-days, \$$cost in the last 7 days"
  else
    fail "ccusage_v_daily_summary: $(problem)"
    fix "run an import against this server once (uv run ccusage_importer.py), it creates the views"
  fi
}

human_age() {
  local seconds=$1
  [ "$seconds" -ge 0 ] || seconds=0
  if [ "$seconds" -lt 3600 ]; then
    printf '%d min' $((seconds / 60))
  elif [ "$seconds" -lt 172800 ]; then
    printf '%d h %d min' $((seconds / 3600)) $((seconds % 3600 / 60))
  else
    printf '%d days' $((seconds / 86400))
  fi
}

check_freshness() {
  local machine good age last_status found=0 limit=$((STALE_HOURS * 3600)) tab
  tab=$(printf '\t')
  query "SELECT machine_name, countIf(status IN ('ok', 'unchanged', 'partial')),
    dateDiff('second', maxIf(finished_at, status IN ('ok', 'unchanged', 'partial')), now()),
    argMax(status, finished_at)
    FROM ccusage_import_runs GROUP BY machine_name ORDER BY machine_name" || {
    fail "freshness: cannot read ccusage_import_runs: $(problem)"
    return 0
  }
  while IFS=$tab read -r machine good age last_status; do
    [ -n "$machine" ] || continue
    found=1
    if [ "$good" -eq 0 ]; then
      warn "machine $machine: no successful import yet (last run: $last_status)"
    elif [ "$age" -gt "$limit" ]; then
      warn "machine $machine: last import $(human_age "$age") ago, more than $STALE_HOURS h (last run: $last_status)"
      fix "on $machine, check its cron job (crontab -l) and log (~/.local/state/ccusage-import/import.log)"
    elif [ "$last_status" = ok ] || [ "$last_status" = unchanged ]; then
      ok "machine $machine: last import $(human_age "$age") ago ($last_status)"
    else
      warn "machine $machine: last import $(human_age "$age") ago, but the latest run ended $last_status"
      fix "on $machine, read the import log (~/.local/state/ccusage-import/import.log)"
    fi
  done <<EOF
$BODY
EOF
  [ "$found" = 1 ] || warn "freshness: no import recorded in ccusage_import_runs yet"
}

check_ccusage() {
  local tool
  for tool in ccusage bunx npx; do
    if command -v "$tool" >/dev/null 2>&1; then
      ok "ccusage on this machine: runs via $tool ($(command -v "$tool"))"
      return 0
    fi
  done
  warn "ccusage on this machine: none of ccusage, bunx, npx is on PATH (fine if this machine only reads)"
  fix "to import from here, install Node.js (for npx) or Bun"
}

main() {
  parse_options "$@"
  if [ -z "${CH_HOST:-}" ]; then
    printf 'CH_HOST is not set: the importer uses its embedded chDB store, which has no HTTP interface.\n'
    printf 'Check it with: uv run ccusage_importer.py --check\n'
    exit 0
  fi
  command -v curl >/dev/null 2>&1 || die 2 "curl not found: install curl"
  read_settings
  BODY_FILE=$(mktemp "${TMPDIR:-/tmp}/verify-setup.XXXXXX")
  HEADER_FILE=$(mktemp "${TMPDIR:-/tmp}/verify-setup.XXXXXX")
  ERROR_FILE=$(mktemp "${TMPDIR:-/tmp}/verify-setup.XXXXXX")
  trap 'rm -f "$BODY_FILE" "$HEADER_FILE" "$ERROR_FILE"' EXIT
  say "verify_setup.sh: $SERVER as $CH_USER, database $CH_DATABASE, password $(
    [ -n "$CH_PASSWORD" ] && printf 'set (not shown)' || printf 'not set')"
  if check_connection; then
    check_tables
    check_view
    check_freshness
  fi
  check_ccusage
  if [ "$FAILED" = 1 ]; then
    say 'Some checks failed (❌): see the fixes above.'
    exit 1
  fi
  say 'All checks passed.'
}

main "$@"
