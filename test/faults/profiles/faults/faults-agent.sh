#!/bin/sh
# The fault tests' agent. Task text "sleep": stays running until cancelled. Task text "review":
# commits a file, asks for review, then commits the reviewer's answer and finishes.
set -eu

case "$AGENTVM_TASK" in
  sleep*)
    agentctl progress "sleeping until cancelled"
    sleep 1800
    ;;
  review*)
    echo "written before review: $AGENTVM_TASK" >before-review.txt
    git add -A
    git commit -q -m "Work before review"
    agentctl progress "committed; asking for review"
    answer=$(agentctl review "Please look at before-review.txt")
    echo "$answer" >answer.txt
    git add -A
    git commit -q -m "Record the reviewer's answer"
    agentctl done "recorded the answer"
    ;;
  *)
    agentctl done "unknown task: $AGENTVM_TASK"
    exit 1
    ;;
esac
