#!/usr/bin/env bash
# Schedule ccusage_importer.py hourly with cron (Linux and macOS), with its settings in a private env file.
# Runs with the bash 3.2 of macOS too: no associative arrays, no mapfile, no GNU-only options.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./setup_cronjob.sh [--minute M] [--first-run] [--with-admin-api] [--dry-run]
       ./setup_cronjob.sh --remove [--dry-run]

Installs (or replaces) a crontab entry for the current user that runs the importer every hour through
`uv run`, from this repository's folder. Running it again leaves one entry.

  --minute M        minute of the hour, 0-59 (default: derived from the machine name, so the machines of a
                    team do not all write at the same minute)
  --first-run       after installing, run one import now exactly as cron will, and show its log
  --with-admin-api  also import the Anthropic Admin API once a day (needs claude_admin_importer.py)
  --dry-run         print what would be done (with --first-run, the command of the first run) and change
                    nothing; a missing crontab or uv is then a warning, since a dry run calls neither
  --remove          remove the entries and the env file (the logs stay)
  -h, --help        this text

Settings: the CH_*, MACHINE_NAME, CCUSAGE_* (CCUSAGE_SHARE too), CLAUDE_CONFIG_DIR, ANTHROPIC_ADMIN_KEY,
ANTHROPIC_BASE_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (a share in S3),
XDG_*_HOME, npm_config_cache, UV_CACHE_DIR and PATH variables of this shell are written to
${XDG_CONFIG_HOME:-~/.config}/ccusage-import/env (mode 0600) which the job reads; the crontab line holds no
secret. Output goes to ${XDG_STATE_HOME:-~/.local/state}/ccusage-import/import.log (CCUSAGE_CRON_LOG_DIR
overrides the folder), rotated before a run once it exceeds CCUSAGE_LOG_MAX_BYTES (default 1048576),
keeping 3 old files. Runs never overlap: the importer waits for (and then gives up on) a running one.

Exit codes: 0 done, 1 crontab or the first run failed, 2 bad usage or a missing program.
EOF
}

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
SCRIPT="$REPO_DIR/$(basename "${BASH_SOURCE[0]}")"
MARKER="# ccusage-import:"
ENV_FILE="${XDG_CONFIG_HOME:-$HOME/.config}/ccusage-import/env"
LOG_DIR="${CCUSAGE_CRON_LOG_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ccusage-import}"
KEEP_LOGS=3
CAPTURED='^(CH_[A-Z_]+|MACHINE_NAME|CCUSAGE_[A-Z0-9_]+|CLAUDE_CONFIG_DIR|ANTHROPIC_ADMIN_KEY|ANTHROPIC_BASE_URL|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|REGION)|XDG_(CONFIG|DATA|CACHE|STATE)_HOME|npm_config_cache|UV_CACHE_DIR|PATH)$'

die() {
  printf 'setup_cronjob.sh: %s\n' "$2" >&2
  exit "$1"
}

# Print $1 single-quoted for sh: every ' becomes '\'' ; nothing else is special inside single quotes.
sq() {
  local q="'" replacement="'\\''"
  printf "'%s'" "${1//"$q"/"$replacement"}"
}

captured_names() {
  compgen -e | grep -E "$CAPTURED" | grep -v -x CCUSAGE_CRON_LOG_DIR || true
}

write_env_file() {
  local name tmp
  (umask 077 && mkdir -p "$(dirname "$ENV_FILE")")
  tmp="$ENV_FILE.tmp.$$"
  (
    umask 077
    {
      printf '# ccusage-import settings for cron, written by setup_cronjob.sh. Holds secrets: keep it mode 0600.\n'
      for name in $(captured_names); do
        printf 'export %s=' "$name"
        sq "${!name}"
        printf '\n'
      done
      printf 'export CCUSAGE_CRON_LOG_DIR='
      sq "$LOG_DIR"
      printf '\n'
    } >"$tmp"
  )
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# The command cron runs for a job: short, absolute paths, no secret.
job_command() {
  printf '%s %s cron-run %s %s %s%s' "$BASH" "$(sq "$SCRIPT")" "$1" "$(sq "$ENV_FILE")" "$MARKER" "$1"
}

# The first run, as cron runs the job: its minimal environment and sh. Sets FIRST_RUN (an argument list).
first_run_command() {
  FIRST_RUN=(env -i "HOME=$HOME" "LOGNAME=$(id -un)" SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c "$(job_command import)")
}

# Print a command so that sh reads it back as the same arguments: a word with characters sh treats specially is
# single-quoted.
print_command() {
  local word separator=''
  for word in "$@"; do
    printf '%s' "$separator"
    case $word in
      '' | *[!A-Za-z0-9_./=:,@+-]*) sq "$word" ;;
      *) printf '%s' "$word" ;;
    esac
    separator=' '
  done
  printf '\n'
}

# A program the change needs: missing, it is refused; in a dry run, which calls no program, only a warning.
need_program() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$DRY_RUN" = 1 ]; then
    printf 'warning: %s not found: %s before running setup_cronjob.sh without --dry-run\n' "$1" "$2" >&2
    return 0
  fi
  die 2 "$1 not found: $2, then run this again"
}

current_crontab() {
  crontab -l 2>/dev/null || true
}

# The current crontab without our lines.
foreign_lines() {
  current_crontab | awk -v marker="$MARKER" 'index($0, marker) == 0'
}

install_crontab() {
  local tmp
  tmp=$(mktemp "${TMPDIR:-/tmp}/ccusage-crontab.XXXXXX")
  cat >"$tmp"
  if [ -s "$tmp" ]; then
    crontab "$tmp" || { rm -f "$tmp"; die 1 "crontab refused the new table"; }
  elif [ -n "$(current_crontab)" ]; then
    crontab -r || { rm -f "$tmp"; die 1 "crontab -r failed"; }
  fi
  rm -f "$tmp"
}

default_minute() {
  printf '%s' "${MACHINE_NAME:-$(uname -n)}" | cksum | awk '{ print $1 % 60 }'
}

rotate_log() {
  local log=$1 max=${CCUSAGE_LOG_MAX_BYTES:-1048576} size i
  case $max in '' | *[!0-9]*) max=1048576 ;; esac
  [ -f "$log" ] || return 0
  size=$(wc -c <"$log")
  if [ $((size + 0)) -lt "$max" ]; then
    return 0
  fi
  rm -f "$log.$KEEP_LOGS"
  i=$KEEP_LOGS
  while [ "$i" -gt 1 ]; do
    if [ -f "$log.$((i - 1))" ]; then
      mv -f "$log.$((i - 1))" "$log.$i"
    fi
    i=$((i - 1))
  done
  mv -f "$log" "$log.1"
}

# What the crontab line calls: read the env file, rotate the log, run one job, log its output and exit code.
cron_run() {
  local job=${1:-} env_file=${2:-} program options="" log_dir log code
  case $job in
    import) program=ccusage_importer.py options=--defer ;;
    admin) program=claude_admin_importer.py ;;
    *) die 2 "cron-run needs a job (import or admin) and the env file" ;;
  esac
  [ -r "$env_file" ] || die 2 "cannot read the env file $env_file: run setup_cronjob.sh again"
  # shellcheck source=/dev/null
  . "$env_file"
  umask 077
  log_dir=${CCUSAGE_CRON_LOG_DIR:-$LOG_DIR}
  mkdir -p "$log_dir"
  log="$log_dir/$job.log"
  rotate_log "$log"
  printf '=== %s %s started\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$job" >>"$log"
  code=0
  # As a module, so Python loads its cached bytecode instead of compiling the script every hour (~0.1 s). The import
  # with --defer: an hour's reports wait in the journal until the store is next opened (docs/operations.md).
  # shellcheck disable=SC2086  # options: one word or none
  (cd "$REPO_DIR" && uv run python -m "${program%.py}" $options) >>"$log" 2>&1 || code=$?
  printf '=== %s %s exit %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$job" "$code" >>"$log"
  exit "$code"
}

remove() {
  if ! command -v crontab >/dev/null 2>&1; then
    printf 'warning: crontab not found: no crontab line to remove, only the env file\n' >&2
  fi
  if [ "$DRY_RUN" = 1 ]; then
    printf 'Would remove these crontab lines:\n'
    current_crontab | awk -v marker="$MARKER" 'index($0, marker) > 0 { print "  " $0 }'
    printf 'Would delete %s\n' "$ENV_FILE"
    printf '(dry run: nothing changed)\n'
    return 0
  fi
  foreign_lines | install_crontab
  rm -f "$ENV_FILE"
  printf 'Removed the ccusage-import crontab entries and %s (logs stay in %s)\n' "$ENV_FILE" "$LOG_DIR"
}

install() {
  local minute=$1 with_admin=$2 first_run=$3 import_line admin_line="" names
  need_program crontab "install cron (Debian/Ubuntu: apt-get install cron)"
  need_program uv "install uv (https://docs.astral.sh/uv/) or put it on PATH"
  case $REPO_DIR$ENV_FILE in
    *%* | *"
"*) die 2 "cron cannot run a path with % or a newline: move the repository or set XDG_CONFIG_HOME" ;;
  esac
  if [ "$with_admin" = 1 ] && [ ! -f "$REPO_DIR/claude_admin_importer.py" ]; then
    die 2 "--with-admin-api: $REPO_DIR/claude_admin_importer.py does not exist"
  fi
  if ! command -v ccusage >/dev/null 2>&1 && ! command -v bunx >/dev/null 2>&1 && ! command -v npx >/dev/null 2>&1; then
    printf 'warning: none of ccusage, bunx, npx is on PATH: install Node.js, or the job will fail\n' >&2
  fi
  import_line="$minute * * * * $(job_command import)"
  if [ "$with_admin" = 1 ]; then
    admin_line="$minute 6 * * * $(job_command admin)"
  fi
  names=$(captured_names | tr '\n' ' ')
  first_run_command
  if [ "$DRY_RUN" = 1 ]; then
    printf 'Would write %s (mode 0600) with: %sCCUSAGE_CRON_LOG_DIR\n' "$ENV_FILE" "$names"
    printf 'Would install in the crontab of %s:\n  %s\n' "$(id -un)" "$import_line"
    [ -z "$admin_line" ] || printf '  %s\n' "$admin_line"
    printf 'Logs would go to %s/\n' "$LOG_DIR"
    if [ "$first_run" = 1 ]; then
      printf 'Would then run one import now, as cron will, and show the end of %s/import.log:\n' "$LOG_DIR"
      printf '  '
      print_command "${FIRST_RUN[@]}"
    fi
    printf '(dry run: nothing changed)\n'
    return 0
  fi
  write_env_file
  { foreign_lines; printf '%s\n' "$import_line"; [ -z "$admin_line" ] || printf '%s\n' "$admin_line"; } | install_crontab
  printf 'Env file: %s (mode 0600): %sCCUSAGE_CRON_LOG_DIR\n' "$ENV_FILE" "$names"
  printf 'Crontab of %s:\n  %s\n' "$(id -un)" "$import_line"
  [ -z "$admin_line" ] || printf '  %s\n' "$admin_line"
  printf 'Log: %s/import.log\nRemove with: %s --remove\n' "$LOG_DIR" "$SCRIPT"
  if [ "$first_run" = 1 ]; then
    printf 'First run (as cron runs it)...\n'
    if "${FIRST_RUN[@]}"; then
      tail -n 20 "$LOG_DIR/import.log"
    else
      tail -n 20 "$LOG_DIR/import.log" >&2 || true
      die 1 "the first run failed; its log is $LOG_DIR/import.log"
    fi
  fi
}

main() {
  local minute="" with_admin=0 first_run=0 action=install
  DRY_RUN=0
  if [ "${1:-}" = cron-run ]; then
    shift
    cron_run "$@"
  fi
  while [ $# -gt 0 ]; do
    case $1 in
      --minute)
        [ $# -ge 2 ] || die 2 "--minute needs a value"
        minute=$2
        shift
        ;;
      --first-run) first_run=1 ;;
      --with-admin-api) with_admin=1 ;;
      --dry-run) DRY_RUN=1 ;;
      --remove) action=remove ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die 2 "unknown option $1 (see --help)" ;;
    esac
    shift
  done
  if [ -n "$minute" ]; then
    case $minute in '' | *[!0-9]*) die 2 "--minute must be 0-59, not $minute" ;; esac
    [ "$minute" -le 59 ] || die 2 "--minute must be 0-59, not $minute"
    minute=$((10#$minute))
  else
    minute=$(default_minute)
  fi
  if [ "$action" = remove ]; then
    remove
  else
    install "$minute" "$with_admin" "$first_run"
  fi
}

main "$@"
