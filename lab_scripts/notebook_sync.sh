#!/bin/bash
# labkit: copy the notebook's volume, where Jupyter saves, to the student's bucket. Runs from cron every few
# minutes, once at start, and from the idle auto-stop just before it stops the notebook. Never deletes in S3:
# a file deleted here keeps its copy there (and the bucket keeps old versions).
set -uo pipefail
. "${LABKIT_SYNC_ENV:-/opt/labkit/sync.env}"
if [ -z "${AWS:-}" ]; then
  echo "$(date -u +%FT%TZ) sync: no AWS CLI on this notebook; nothing copied"
  exit 1
fi
# One sync at a time: a run that finds one going waits for it, then copies what changed meanwhile.
exec 9>"${LABKIT_SYNC_LOCK:-/var/lock/labkit-sync.lock}"
if ! flock -w 240 9; then
  echo "$(date -u +%FT%TZ) sync: the previous sync still runs after 4 minutes; skipped"
  exit 1
fi
"$AWS" s3 sync "$SOURCE" "s3://$BUCKET/$PREFIX" --region "$REGION" --no-follow-symlinks --only-show-errors \
  --exclude '*.ipynb_checkpoints/*' --exclude 'lost+found/*'
status=$?
echo "$(date -u +%FT%TZ) sync to s3://$BUCKET/$PREFIX: exit $status"
exit $status
