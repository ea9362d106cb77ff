#!/usr/bin/env bash
# Nightly dumps of the gateway's database (DATABASE_URL) and Rasa's tracker store
# (TRACKER_DATABASE_URL) into BACKUP_DIR/<date>/, encrypted to BACKUP_GPG_RECIPIENT when set; dumps
# older than BACKUP_KEEP_DAYS are deleted. Run by hotline-backup.timer on one host; by hand:
#   sudo -u hotline env $(grep -v '^#' /etc/hotline/hotline.env | xargs) deploy/backup.sh
# Restore: see deploy/README.md, "Backups". Redis holds nothing to back up.
set -euo pipefail
umask 077

: "${DATABASE_URL:?DATABASE_URL is not set}"
BACKUP_DIR="${BACKUP_DIR:-/var/backups/hotline}"
KEEP_DAYS="${BACKUP_KEEP_DAYS:-14}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$BACKUP_DIR/$stamp"
mkdir -p "$target"

dump() {  # dump NAME URL
    local name="$1" url="$2" out="$target/$1.dump"
    # -Fc: compressed, restorable table by table with pg_restore; no owners/privileges so that a
    # restore into a differently named role works.
    pg_dump --format=custom --no-owner --no-privileges --dbname="$url" --file="$out"
    if [ -n "${BACKUP_GPG_RECIPIENT:-}" ]; then
        gpg --batch --yes --trust-model always --recipient "$BACKUP_GPG_RECIPIENT" --output "$out.gpg" --encrypt "$out"
        shred -u "$out" 2>/dev/null || rm -f "$out"
        out="$out.gpg"
    fi
    sha256sum "$out" > "$out.sha256"
    echo "backup: $name -> $out ($(du -h "$out" | cut -f1))"
}

dump hotline "$DATABASE_URL"
if [ -n "${TRACKER_DATABASE_URL:-}" ]; then
    dump hotline_rasa "$TRACKER_DATABASE_URL"
fi

# keep KEEP_DAYS days: a person's erased or purged data leaves the backups within that time
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -mtime +"$KEEP_DAYS" -print -exec rm -rf {} +
echo "backup: done ($target)"
