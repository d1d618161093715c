#!/bin/sh
# confhub-init.sh — a service container's entrypoint that installs the service's files from
# confhub before the service starts, closing the start-up race in which a service reads a stale or
# missing file.
#
# Usage (as the container's entrypoint, in front of the service's own command):
#   confhub-init.sh COMMAND [ARGS...]
# It waits until confhub answers GET /readyz, downloads the target's bundle (a tar with a sha256
# MANIFEST), verifies every file, installs each one atomically, removes the files it installed
# earlier that the bundle no longer holds, records the revision, checks in, and then execs
# COMMAND, so the service becomes this process (PID 1) and receives the signals.
# POSIX sh; needs only busybox: sh, wget, tar, sha256sum, mv, mktemp, cat, chmod, mkdir, rm, sleep,
# date, od, hostname, stat, chown, and find and timeout when present.
#
# Environment:
#   CONFHUB_URL         required. http://host:port of confhub (no path).
#   CONFHUB_TARGET      required. The target whose files are installed.
#   CONFHUB_TOKEN_FILE  required. A file whose first line is the target's read-only token. The token
#                       is never taken from the environment and never printed.
#   CONFHUB_DEST        required. The directory the files go to: DEST/<path in the manifest>.
#   CONFHUB_TIMEOUT     seconds, default 120: the whole wait for readiness and a good bundle.
#   CONFHUB_REQUIRED    1 (default): no files, no start. 0: when there is no good bundle in time,
#                       start COMMAND with the files installed earlier (or none; or those of an
#                       interrupted install, warned); when confhub refuses the token, start it
#                       only if there are earlier files.
#   CONFHUB_INSTANCE    the name this instance checks in with, default the hostname
#                       ([A-Za-z0-9._:-], 1-128 characters).
#   CONFHUB_STATE_FILE  where the installed revision is recorded, default $CONFHUB_DEST/.confhub-revision:
#                       one line, the revision, or "installing <revision>" while the files are
#                       being replaced (left so by a run killed then: the files are a mix).
#                       Next to it, $CONFHUB_STATE_FILE.files lists the files installed (a line
#                       "dest=<CONFHUB_DEST>", then their paths): those a later bundle no longer
#                       holds are removed, and nothing else in CONFHUB_DEST ever is.
#
# Exit status (log lines go to stderr, prefixed "confhub-init: "):
#   0 (or any)  never the script's own: once the files are installed (or CONFHUB_REQUIRED=0 lets it
#             start without them), the script execs COMMAND and the status is COMMAND's;
#             126/127: COMMAND cannot be executed.
#   64        a missing or bad setting (the line names it), or no COMMAND (EX_USAGE).
#   77        confhub refused the token (HTTP 401) (EX_NOPERM), unless CONFHUB_REQUIRED=0 and files
#             of an earlier install exist: a wrong or revoked token does not heal by waiting, so
#             there is no retry.
#   78        CONFHUB_REQUIRED=1 and no good bundle within CONFHUB_TIMEOUT (EX_CONFIG), so the
#             container's restart policy tries again.
#   1         installing failed locally (destination not writable, a rename refused for another
#             reason than a bind mount); files already renamed into place stay, and
#             CONFHUB_STATE_FILE says "installing <revision>".
#   129/130/143  stopped by SIGHUP/SIGINT/SIGTERM while waiting or downloading.

set -eu

# Every variable here has a prefix (ch_, http_, inst_, backoff_, mode_is_): a variable inherited from the
# environment stays exported, and a changed value of, say, `mode` or `target` would reach COMMAND.

log() { printf 'confhub-init: %s\n' "$*" >&2; }
die() {
  die_status=$1
  shift
  log "$@"
  exit "$die_status"
}

# --- Settings ---------------------------------------------------------------------------------

[ "$#" -gt 0 ] || die 64 "no command given: usage: confhub-init.sh COMMAND [ARGS...]"

ch_url=${CONFHUB_URL:-}
[ -n "$ch_url" ] || die 64 "CONFHUB_URL is required (http://host:port of confhub)"
ch_url=${ch_url%/}
case $ch_url in
  http://* | https://*) ;;
  *) die 64 "CONFHUB_URL must start with http:// or https://" ;;
esac
# Host and port only: the API paths are appended, and nothing here may reach wget as an option.
case ${ch_url#*://} in
  '' | */* | *[!]A-Za-z0-9._:[-]*) die 64 "CONFHUB_URL must be http://host:port with no path" ;;
esac

ch_target=${CONFHUB_TARGET:-}
[ -n "$ch_target" ] || die 64 "CONFHUB_TARGET is required (the target whose files are installed)"
# confhub's own rule for target names; it also keeps the URL path free of anything to escape.
case $ch_target in
  [!a-z0-9]* | *[!a-z0-9_-]*) die 64 "CONFHUB_TARGET must be a target name ([a-z0-9][a-z0-9_-]*)" ;;
esac
[ "${#ch_target}" -le 64 ] || die 64 "CONFHUB_TARGET is longer than 64 characters"

ch_token_file=${CONFHUB_TOKEN_FILE:-}
if [ -z "$ch_token_file" ]; then
  # A token in the environment is visible to every process of the container and in
  # `docker inspect`: it is refused rather than used.
  if [ -n "${CONFHUB_TOKEN:-}" ]; then
    die 64 "CONFHUB_TOKEN_FILE is required: the token is read from a file only (CONFHUB_TOKEN is not used)"
  fi
  die 64 "CONFHUB_TOKEN_FILE is required (a file holding the target's token)"
fi
if [ ! -f "$ch_token_file" ] || [ ! -r "$ch_token_file" ]; then
  die 64 "CONFHUB_TOKEN_FILE: cannot read $ch_token_file"
fi
# Unset first: a variable of that name inherited from the environment would stay exported, and
# the token would reach every child and COMMAND.
unset confhub_token
confhub_token=
# The first line; read fails at a last line without a newline but has set the variable.
IFS= read -r confhub_token <"$ch_token_file" || :
ch_cr=$(printf '\r')
confhub_token=${confhub_token%"$ch_cr"}
case $confhub_token in
  '' | *[![:graph:]]*) die 64 "CONFHUB_TOKEN_FILE: the first line of $ch_token_file must be the token (printable, no spaces)" ;;
esac

ch_dest=${CONFHUB_DEST:-}
[ -n "$ch_dest" ] || die 64 "CONFHUB_DEST is required (the directory the files are installed into)"
ch_dest=${ch_dest%/}
[ -n "$ch_dest" ] || ch_dest=/
# A leading "-" would read as an option to mkdir, mktemp and mv.
case $ch_dest in -*) ch_dest=./$ch_dest ;; esac

ch_timeout_s=${CONFHUB_TIMEOUT:-120}
# Digits without a leading zero: shell arithmetic reads 010 as octal.
case $ch_timeout_s in
  '' | 0* | *[!0-9]*) die 64 "CONFHUB_TIMEOUT must be a whole number of seconds, at least 1" ;;
esac
[ "${#ch_timeout_s}" -le 6 ] || die 64 "CONFHUB_TIMEOUT is too large (at most 999999 seconds)"

ch_required=${CONFHUB_REQUIRED:-1}
case $ch_required in
  0 | 1) ;;
  *) die 64 "CONFHUB_REQUIRED must be 0 or 1" ;;
esac

ch_instance=${CONFHUB_INSTANCE:-}
ch_instance_from=CONFHUB_INSTANCE
if [ -z "$ch_instance" ]; then
  ch_instance=$(hostname 2>/dev/null) || ch_instance=
  ch_instance_from="CONFHUB_INSTANCE (defaulted to the hostname)"
fi
# The check-in body is built by hand: only characters that need no JSON escaping pass.
case $ch_instance in
  '' | *[!A-Za-z0-9._:-]*) die 64 "$ch_instance_from must be 1-128 characters of [A-Za-z0-9._:-]" ;;
esac
[ "${#ch_instance}" -le 128 ] || die 64 "$ch_instance_from must be 1-128 characters of [A-Za-z0-9._:-]"

ch_state_file=${CONFHUB_STATE_FILE:-$ch_dest/.confhub-revision}
case $ch_state_file in
  '' | */) die 64 "CONFHUB_STATE_FILE must name a file" ;;
  -*) ch_state_file=./$ch_state_file ;;
esac
ch_state_dir=${ch_state_file%/*}
[ "$ch_state_dir" != "$ch_state_file" ] || ch_state_dir=.
[ -n "$ch_state_dir" ] || ch_state_dir=/
ch_files_list=$ch_state_file.files

# --- Helpers ----------------------------------------------------------------------------------

ch_work=
ch_install_tmp=
ch_child_pid=
# Temp files and a running request or backoff sleep go on every way out; before exec the traps
# are reset and this runs by hand, since exec replaces the shell and no EXIT trap would run.
# The request is waited for, so it writes nothing into the temp dir once that is gone.
cleanup() {
  if [ -n "$ch_child_pid" ]; then
    kill "$ch_child_pid" 2>/dev/null || :
    wait "$ch_child_pid" 2>/dev/null || :
  fi
  if [ -n "$ch_install_tmp" ]; then rm -f -- "$ch_install_tmp"; fi
  if [ -n "$ch_work" ]; then rm -rf -- "$ch_work"; fi
  ch_child_pid=
  ch_install_tmp=
  ch_work=
}
trap cleanup EXIT
# As PID 1 the shell has no default action for these: without traps `docker stop` would wait for
# its SIGKILL. exit runs the EXIT trap.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Each request gets its own bound: -T where this wget has it (Debian's busybox wget does not,
# and its -T crashes), and the timeout applet around it, which also bounds a slow answer.
ch_wget_has_T=0
case $(wget --help 2>&1 || :) in *'-T SEC'*) ch_wget_has_T=1 ;; esac
ch_have_timeout=0
if timeout 5 sleep 0 2>/dev/null; then ch_have_timeout=1; fi
# Backoff sleeps in milliseconds where sleep takes fractions, else whole seconds.
ch_frac_sleep=0
if sleep 0.001 2>/dev/null; then ch_frac_sleep=1; fi

# Sets ch_now to whole seconds of a clock that only moves forward: /proc/uptime where it can be
# read (a wall clock stepped by NTP would stretch or cut the wait), else date +%s.
ch_uptime=0
now() {
  if [ "$ch_uptime" = 1 ]; then
    IFS=' .' read -r ch_now _ </proc/uptime || :
  else
    ch_now=$(date +%s)
  fi
}
if [ -r /proc/uptime ]; then
  ch_uptime=1
  now
  case $ch_now in '' | *[!0-9]*) ch_uptime=0 ;; esac
fi

# run_child COMMAND [ARGS...]: runs COMMAND in the background and waits for it, setting
# ch_child_rc. A stop signal is then handled at once (its trap runs when wait returns) instead of
# after the command, and cleanup ends the command.
run_child() {
  "$@" &
  ch_child_pid=$!
  wait "$ch_child_pid" && ch_child_rc=0 || ch_child_rc=$?
  ch_child_pid=
}

# http_request SECONDS OUTFILE WGET-ARGS... — sets http_rc (wget's status), http_status (the last
# HTTP status line's code, empty when no answer came) and http_reason (why it failed, for the log).
# busybox wget exits 1 on any HTTP error, so the status comes from -S (the answer's headers on
# stderr, kept in the temp dir); the rest of wget's output is not shown.
http_request() {
  http_t=$1
  http_out=$2
  shift 2
  # No proxy: busybox wget takes http_proxy from the environment (a service image may set one for
  # its own traffic) and ignores no_proxy, so the token and the bundle would go through it.
  set -- -Y off -S -q -O "$http_out" "$@"
  if [ "$ch_wget_has_T" = 1 ]; then set -- -T "$http_t" "$@"; fi
  set -- wget "$@"
  if [ "$ch_have_timeout" = 1 ]; then set -- timeout "$http_t" "$@"; fi
  http_log=$ch_work/wget.log
  run_child "$@" >"$http_log" 2>&1
  http_rc=$ch_child_rc
  http_status=
  http_note=
  while IFS= read -r http_line; do
    case $http_line in
      '  HTTP/'* | 'HTTP/'*)
        http_code=${http_line#*HTTP/*[ ]}
        http_code=${http_code%%[ ]*}
        case $http_code in [1-5][0-9][0-9]) http_status=$http_code ;; esac
        ;;
      # wget prints no request headers, but the token is kept out of the log regardless.
      *"$confhub_token"*) ;;
      wget:*) http_note=${http_line#wget: } ;;
    esac
  done <"$http_log"
  rm -f -- "$http_log"
  http_reason=
  if [ "$http_rc" = 0 ]; then
    return 0
  fi
  case $http_status in
    '' | 2*)
      # No answer, or one cut off (the timeout applet ends wget without a word).
      http_reason=${http_note:-no complete answer within $http_t s}
      ;;
    *) http_reason="HTTP $http_status" ;;
  esac
}

ch_seed=$$
# Sets ch_rand_n to a random non-negative integer; $$ seeds a fallback where /dev/urandom or od is missing.
random_number() {
  ch_rand_n=$(od -An -N4 -tu4 /dev/urandom 2>/dev/null) || ch_rand_n=
  ch_rand_n=${ch_rand_n##*[ ]}
  case $ch_rand_n in
    '' | *[!0-9]*)
      ch_seed=$(((ch_seed * 1103515245 + 12345) % 2147483648))
      ch_rand_n=$ch_seed
      ;;
  esac
}

# backoff_sleep REASON — full jitter: a random wait in [0, delay], cut at the deadline.
backoff_sleep() {
  random_number
  backoff_ms=$((ch_rand_n % (ch_delay * 1000 + 1)))
  now
  backoff_left=$(((ch_deadline - ch_now) * 1000))
  [ "$backoff_ms" -le "$backoff_left" ] || backoff_ms=$backoff_left
  [ "$backoff_ms" -ge 0 ] || backoff_ms=0
  if [ "$ch_frac_sleep" = 1 ]; then
    backoff_frac=$((1000 + backoff_ms % 1000))
    backoff_arg=$((backoff_ms / 1000)).${backoff_frac#1}
  else
    backoff_arg=$(((backoff_ms + 999) / 1000))
  fi
  log "$1; retrying in $backoff_arg s (a random part of up to $ch_delay s)"
  run_child sleep "$backoff_arg"
}

# Sets ch_bad to why the extracted bundle in $ch_work/x must not be installed (empty when it is
# good) and ch_revision to its revision. Nothing is installed before every file has passed.
verify_bundle() {
  ch_bad=
  ch_revision=
  ch_x=$ch_work/x
  if [ ! -f "$ch_x/MANIFEST" ] || [ -L "$ch_x/MANIFEST" ]; then
    ch_bad="the bundle has no MANIFEST"
    return 0
  fi
  if [ ! -f "$ch_x/REVISION" ] || [ -L "$ch_x/REVISION" ]; then
    ch_bad="the bundle has no REVISION"
    return 0
  fi
  IFS= read -r ch_revision <"$ch_x/REVISION" || :
  # Goes into the check-in JSON and the state file unescaped: a safe character set only.
  case $ch_revision in
    '' | *[!A-Za-z0-9._+-]*)
      ch_bad="the bundle's REVISION is not a revision"
      return 0
      ;;
  esac
  if [ "${#ch_revision}" -gt 128 ]; then
    ch_bad="the bundle's REVISION is longer than 128 characters"
    return 0
  fi
  ch_file_count=0
  while IFS= read -r ch_line || [ -n "$ch_line" ]; do
    ch_sum=${ch_line%%[ ]*}
    ch_rest=${ch_line#*[ ]}
    ch_mode=${ch_rest%%[ ]*}
    ch_path=${ch_rest#*[ ]}
    if [ "$ch_rest" = "$ch_line" ] || [ "$ch_path" = "$ch_rest" ]; then
      ch_bad="a MANIFEST line is not '<sha256> <mode> <path>'"
      return 0
    fi
    case $ch_sum in *[!0-9a-f]*) ch_sum= ;; esac
    if [ "${#ch_sum}" != 64 ]; then
      ch_bad="a MANIFEST line has no sha256 (path $ch_path)"
      return 0
    fi
    # Permission bits only: no setuid, setgid or sticky bit on a file from the network.
    case $ch_mode in
      0[0-7][0-7][0-7]) ;;
      *)
        ch_bad="the MANIFEST's mode of $ch_path is not 0 and 3 octal digits (setuid, setgid and sticky are refused)"
        return 0
        ;;
    esac
    # DEST/<path> must stay inside DEST.
    case $ch_path in
      /*)
        ch_bad="the MANIFEST names an absolute path: $ch_path"
        return 0
        ;;
    esac
    case /$ch_path/ in
      */../* | */./* | *//*)
        ch_bad="the MANIFEST names an unsafe path: $ch_path"
        return 0
        ;;
    esac
    ch_file=$ch_x/files/$ch_path
    if [ ! -f "$ch_file" ] || [ -L "$ch_file" ]; then
      ch_bad="the bundle lacks the file $ch_path"
      return 0
    fi
    # From stdin, so no file name is quoted or escaped in the output.
    ch_actual=$(sha256sum <"$ch_file")
    ch_actual=${ch_actual%%[ ]*}
    if [ "$ch_actual" != "$ch_sum" ]; then
      ch_bad="checksum mismatch: $ch_path (the MANIFEST says $ch_sum, the bundle holds $ch_actual)"
      return 0
    fi
    ch_file_count=$((ch_file_count + 1))
  done <"$ch_x/MANIFEST"
}

# install_file SOURCE MODE PATH SHA256: a temp file in the destination's directory, then a rename
# over the destination, so the service never reads half a file.
install_file() {
  inst_src=$1
  inst_mode=$2
  inst_path=$3
  inst_sum=$4
  inst_dst=$ch_dest/$inst_path
  inst_dir=${inst_dst%/*}
  [ -n "$inst_dir" ] || inst_dir=/
  mkdir -p -- "$inst_dir" || die 1 "cannot create the directory of $inst_path in $ch_dest"
  # mv onto a directory would move the file into it.
  [ ! -d "$inst_dst" ] || die 1 "cannot install $inst_path: $inst_dst is a directory"
  ch_install_tmp=$(mktemp "$inst_dir/.confhub-init.XXXXXX") || die 1 "cannot create a temp file next to $inst_dst"
  cat -- "$inst_src" >"$ch_install_tmp" || die 1 "cannot write a temp file next to $inst_dst"
  # The renamed-in file keeps the owner of the one it replaces (a service that drops to its own
  # user must still read it), a new one gets its directory's. Only root can give a file away:
  # otherwise the file stays the script's user's, as it must.
  if [ -e "$inst_dst" ] || [ -L "$inst_dst" ]; then
    inst_owner=$(stat -c %u:%g "$inst_dst" 2>/dev/null) || inst_owner=
  else
    inst_owner=$(stat -c %u:%g "$inst_dir" 2>/dev/null) || inst_owner=
  fi
  if [ -n "$inst_owner" ]; then chown "$inst_owner" "$ch_install_tmp" 2>/dev/null || :; fi
  # After chown, which may clear mode bits.
  chmod "$inst_mode" "$ch_install_tmp" || die 1 "cannot set the mode of $inst_path"
  if inst_err=$(mv -f -- "$ch_install_tmp" "$inst_dst" 2>&1); then
    ch_install_tmp=
    return 0
  fi
  # The end of mv's message only: the start names the file, and a path may hold any word.
  # "Device or resource busy" (glibc), "Resource busy" (musl).
  case $inst_err in
    *'Resource busy' | *'resource busy')
      # A single-file bind mount: rename onto a mount point fails with EBUSY. Writing in place
      # keeps the inode the service's mount refers to (not atomic: there is no other way).
      # A mode without owner write (0440) from the last install would refuse a non-root writer.
      if [ ! -w "$inst_dst" ]; then chmod u+w "$inst_dst" 2>/dev/null || :; fi
      cat -- "$ch_install_tmp" >"$inst_dst" || die 1 "cannot write $inst_dst in place"
      inst_actual=$(sha256sum <"$inst_dst")
      [ "${inst_actual%%[ ]*}" = "$inst_sum" ] || die 1 "$inst_dst differs from the bundle after writing it in place"
      # The bytes are right; a file of another owner (a host file mounted in, writable by all)
      # refuses chmod to a non-root user, and the mode is then the host's business.
      if ! mode_is "$inst_dst" "$inst_mode"; then
        chmod "$inst_mode" "$inst_dst" 2>/dev/null ||
          log "warning: $inst_dst is written, but its mode stays ${ch_mode_now:-unknown}: chmod $inst_mode was refused (the file belongs to another user)"
      fi
      rm -f -- "$ch_install_tmp"
      ch_install_tmp=
      ;;
    *) die 1 "cannot install $inst_path: $inst_err" ;;
  esac
}

# mode_is FILE MODE: whether FILE's permission bits are MODE (4 octal digits); sets ch_mode_now
# to what stat says (empty when stat cannot tell, which counts as a difference).
mode_is() {
  ch_mode_now=$(stat -c %a "$1" 2>/dev/null) || ch_mode_now=
  mode_is_want=$2
  # stat prints 640 for 0640, 0 for 0000.
  while :; do
    case $mode_is_want in
      0?*) mode_is_want=${mode_is_want#0} ;;
      *) break ;;
    esac
  done
  [ -n "$ch_mode_now" ] && [ "$ch_mode_now" = "$mode_is_want" ]
}

install_bundle() {
  while IFS= read -r ch_line || [ -n "$ch_line" ]; do
    ch_sum=${ch_line%%[ ]*}
    ch_rest=${ch_line#*[ ]}
    install_file "$ch_work/x/files/${ch_rest#*[ ]}" "${ch_rest%%[ ]*}" "${ch_rest#*[ ]}" "$ch_sum"
  done <"$ch_work/x/MANIFEST"
}

# put_state FILE <CONTENT: CONFHUB_STATE_FILE or its list of files gets CONTENT, written next to
# its final place and renamed, so a crash leaves the old or the new one whole.
put_state() {
  mkdir -p -- "$ch_state_dir" || die 1 "cannot create the directory of CONFHUB_STATE_FILE $ch_state_file"
  ch_install_tmp=$(mktemp "$ch_state_dir/.confhub-init.XXXXXX") || die 1 "cannot write $1"
  cat >"$ch_install_tmp" || die 1 "cannot write $1"
  chmod 0644 "$ch_install_tmp"
  mv -f -- "$ch_install_tmp" "$1" || die 1 "cannot write $1"
  ch_install_tmp=
}

write_state() {
  put_state "$ch_state_file" <<EOF
$1
EOF
}

# The list of installed files ($CONFHUB_STATE_FILE.files): a line naming DEST, then one path
# (relative to DEST) a line. Only files on it are ever removed, and only from the DEST it names.
ch_list_header="dest=$ch_dest"

# Sets ch_list_ok when the list exists and belongs to this DEST.
check_files_list() {
  ch_list_ok=0
  [ -f "$ch_files_list" ] || return 0
  ch_list_first=
  IFS= read -r ch_list_first <"$ch_files_list" || :
  if [ "$ch_list_first" = "$ch_list_header" ]; then ch_list_ok=1; fi
}

# Whether a path stays inside DEST: relative, no empty, "." or ".." component.
path_is_safe() {
  case $1 in '' | /*) return 1 ;; esac
  case /$1/ in */../* | */./* | *//*) return 1 ;; esac
}

# The MANIFEST's paths, one a line, into $ch_work/paths.
manifest_paths() {
  while IFS= read -r ch_line || [ -n "$ch_line" ]; do
    ch_rest=${ch_line#*[ ]}
    printf '%s\n' "${ch_rest#*[ ]}"
  done <"$ch_work/x/MANIFEST" >"$ch_work/paths"
}

# Before installing, the list holds the new paths as well as the old ones: a run stopped half way
# has installed some of them, and a later bundle without them must still remove them.
list_files_before() {
  check_files_list
  {
    printf '%s\n' "$ch_list_header"
    if [ "$ch_list_ok" = 1 ]; then
      # Without its first line, the DEST line.
      ch_list_skip=1
      while IFS= read -r ch_line || [ -n "$ch_line" ]; do
        if [ "$ch_list_skip" = 1 ]; then
          ch_list_skip=0
          continue
        fi
        printf '%s\n' "$ch_line"
      done <"$ch_files_list"
    fi
    cat "$ch_work/paths"
  } >"$ch_work/list"
  put_state "$ch_files_list" <"$ch_work/list"
}

# Files an earlier run installed that the new MANIFEST no longer lists are removed (an nginx
# conf.d would keep serving a site that is gone). Nothing else in DEST is touched: only paths on
# the list, which this script wrote. A file that cannot go (a bind mount) is a warning.
remove_stale() {
  check_files_list
  [ "$ch_list_ok" = 1 ] || return 0
  ch_list_skip=1
  while IFS= read -r ch_old || [ -n "$ch_old" ]; do
    if [ "$ch_list_skip" = 1 ]; then
      ch_list_skip=0
      continue
    fi
    path_is_safe "$ch_old" || continue
    ch_kept=0
    while IFS= read -r ch_new; do
      if [ "$ch_new" = "$ch_old" ]; then
        ch_kept=1
        break
      fi
    done <"$ch_work/paths"
    [ "$ch_kept" = 0 ] || continue
    ch_stale=$ch_dest/$ch_old
    if [ -f "$ch_stale" ] || [ -L "$ch_stale" ]; then
      if rm -f -- "$ch_stale" 2>/dev/null; then
        log "removed $ch_old: it is no longer in the bundle"
      else
        log "warning: cannot remove $ch_old, which is no longer in the bundle"
      fi
    fi
  done <"$ch_files_list"
}

list_files_after() {
  {
    printf '%s\n' "$ch_list_header"
    cat "$ch_work/paths"
  } >"$ch_work/list"
  put_state "$ch_files_list" <"$ch_work/list"
}

# Temp entries (a bundle with its secrets, a half-written file) of a run that was killed outright
# (SIGKILL runs no trap) are removed once they are 10 minutes old: another container sharing DEST
# may be installing right now, and a live run makes a fresh temp dir for each attempt. Where
# busybox has no find they stay.
sweep_temps() {
  [ -d "$1" ] || return 0
  find "$1" -mindepth 1 -maxdepth 1 -name '.confhub-init.*' -mmin +10 -exec rm -rf -- {} + 2>/dev/null || :
}

# Temp files of an install are next to the files: the directories of the listed files too.
sweep_all_temps() {
  sweep_temps "$ch_dest"
  sweep_temps "$ch_state_dir"
  check_files_list
  [ "$ch_list_ok" = 1 ] || return 0
  ch_swept=
  while IFS= read -r ch_line || [ -n "$ch_line" ]; do
    case $ch_line in */*) ;; *) continue ;; esac
    path_is_safe "$ch_line" || continue
    ch_sweep_dir=$ch_dest/${ch_line%/*}
    [ "$ch_sweep_dir" != "$ch_swept" ] || continue
    sweep_temps "$ch_sweep_dir"
    ch_swept=$ch_sweep_dir
  done <"$ch_files_list"
}

# A failed check-in only hides this instance from confhub's status; the files are in place.
check_in() {
  http_request 5 /dev/null \
    --header "Authorization: Bearer $confhub_token" \
    --header 'Content-Type: application/json' \
    --post-data "{\"revision\":\"$ch_revision\",\"instance\":\"$ch_instance\"}" \
    "$ch_url/api/v1/targets/$ch_target/checkin"
  if [ "$http_rc" != 0 ]; then
    log "warning: check-in of revision $ch_revision failed ($http_reason); starting anyway"
  fi
}

start_command() {
  cleanup
  trap - EXIT HUP INT TERM
  # The service gets no token: neither the one read from the file nor one left in the environment
  # (which the script never uses).
  unset confhub_token CONFHUB_TOKEN
  exec "$@"
}

# CONFHUB_REQUIRED=0 without a good bundle: the files of an earlier start, if any, are in place.
start_without_bundle() {
  ch_previous=
  if [ -f "$ch_state_file" ]; then
    IFS= read -r ch_previous <"$ch_state_file" || :
    case $ch_previous in
      'installing '*)
        log "warning: $1; the install of revision ${ch_previous#installing } was interrupted: starting $2 with the files in $ch_dest as they are, some perhaps of the revision before (CONFHUB_REQUIRED=0)"
        return 0
        ;;
      *[!A-Za-z0-9._+-]*) ch_previous="(unreadable)" ;;
    esac
  fi
  if [ -n "$ch_previous" ]; then
    log "warning: $1; starting $2 with the files of revision $ch_previous installed earlier (CONFHUB_REQUIRED=0)"
  else
    log "warning: $1; no files were ever installed into $ch_dest; starting $2 anyway (CONFHUB_REQUIRED=0)"
  fi
}

# --- Main -------------------------------------------------------------------------------------

mkdir -p -- "$ch_dest" || die 1 "cannot create CONFHUB_DEST $ch_dest"
sweep_all_temps

now
ch_deadline=$((ch_now + ch_timeout_s))
ch_delay=1
ch_ever_ready=0
ch_last_reason=
ch_installed=0
while :; do
  # The temp dir is in DEST (the same filesystem as the files) and new for each attempt, so a
  # live one is never old enough to be swept by another container.
  ch_work=$(mktemp -d "$ch_dest/.confhub-init.XXXXXX") || die 1 "cannot create a temp directory in CONFHUB_DEST $ch_dest"
  # Bound each request by what is left of the wait (at least 1 s: a last try at the deadline).
  now
  ch_left=$((ch_deadline - ch_now))
  [ "$ch_left" -ge 1 ] || ch_left=1
  ch_request_t=5
  [ "$ch_request_t" -le "$ch_left" ] || ch_request_t=$ch_left

  http_request "$ch_request_t" /dev/null "$ch_url/readyz"
  if [ "$http_rc" != 0 ]; then
    ch_last_reason="confhub not ready: $http_reason"
  else
    ch_ever_ready=1
    # All that is left: a large bundle on a slow link may need more than a short request.
    now
    ch_left=$((ch_deadline - ch_now))
    [ "$ch_left" -ge 1 ] || ch_left=1
    # busybox wget takes a header only as an argument, so the token is in its argv (visible in
    # the container's process list) for this request; it is never in the environment or a log.
    http_request "$ch_left" "$ch_work/bundle.tar" \
      --header "Authorization: Bearer $confhub_token" \
      "$ch_url/api/v1/targets/$ch_target/bundle"
    if [ "$http_status" = 401 ]; then
      if [ "$ch_required" = 0 ] && [ -f "$ch_state_file" ]; then
        start_without_bundle "confhub refused the token of target $ch_target (HTTP 401)" "$1"
        start_command "$@"
      fi
      die 77 "confhub refused the token of target $ch_target (HTTP 401): check CONFHUB_TOKEN_FILE and the target's tokens"
    elif [ "$http_rc" != 0 ]; then
      ch_last_reason="bundle of target $ch_target: $http_reason"
    elif ch_listing=$(tar -tvf "$ch_work/bundle.tar" 2>/dev/null); then
      # Links, devices and FIFOs are refused: a symlink under files/ would let a later entry or
      # the install write outside the temp dir, and a hard link would be made to any file named
      # (busybox lists it as a regular file with " -> target"). A file whose name holds " -> "
      # is refused with them.
      ch_last_reason=
      while IFS= read -r ch_entry; do
        case $ch_entry in
          *' -> '*) ch_last_reason="bundle of target $ch_target: an entry is not a regular file or directory" ;;
          '' | -* | d*) ;;
          *) ch_last_reason="bundle of target $ch_target: an entry is not a regular file or directory" ;;
        esac
      done <<EOF
$ch_listing
EOF
      if [ -z "$ch_last_reason" ]; then
        mkdir "$ch_work/x"
        if ch_tar_err=$(tar -xf "$ch_work/bundle.tar" -C "$ch_work/x" 2>&1); then
          verify_bundle
          if [ -z "$ch_bad" ]; then
            ch_installed=1
            break
          fi
          ch_last_reason="bundle of target $ch_target: $ch_bad"
        else
          ch_last_reason="bundle of target $ch_target: tar: $ch_tar_err"
        fi
      fi
    else
      ch_last_reason="bundle of target $ch_target: not a tar archive"
    fi
  fi
  rm -rf -- "$ch_work"
  ch_work=

  now
  if [ "$ch_now" -ge "$ch_deadline" ]; then break; fi
  backoff_sleep "$ch_last_reason"
  ch_delay=$((ch_delay * 2))
  [ "$ch_delay" -le 10 ] || ch_delay=10
done

if [ "$ch_installed" = 1 ]; then
  # Marked first: a run killed while installing leaves a mix of two revisions, which the state
  # file must not name as the old one.
  manifest_paths
  list_files_before
  write_state "installing $ch_revision"
  install_bundle
  remove_stale
  list_files_after
  write_state "$ch_revision"
  log "installed revision $ch_revision of target $ch_target ($ch_file_count files) into $ch_dest"
  check_in
  log "starting $1"
  start_command "$@"
fi

if [ "$ch_ever_ready" = 1 ]; then
  ch_why="no good bundle of target $ch_target within $ch_timeout_s s (last: $ch_last_reason)"
else
  ch_why="confhub at $ch_url was not ready within $ch_timeout_s s (last: $ch_last_reason)"
fi
if [ "$ch_required" = 1 ]; then
  die 78 "$ch_why"
fi
start_without_bundle "$ch_why" "$1"
start_command "$@"
