#!/bin/sh
# The fault tests' agent, steered by the task text. "sleep": stays running until cancelled.
# "review": commits a file, asks for review, commits the reviewer's answer and finishes.
# "cycles": ten commit-review-answer rounds with one background process that must survive them.
# "quick": one commit, then done.
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
  cycles*)
    # A process that must live through every snapshot and restore.
    sleep 3600 &
    echo $! >/tmp/keeper.pid
    i=1
    while [ "$i" -le 10 ]; do
      echo "cycle $i" >>cycles.txt
      git add -A
      git commit -q -m "Cycle $i"
      answer=$(agentctl review "cycle $i")
      echo "$answer" >>answers.txt
      if ! kill -0 "$(cat /tmp/keeper.pid)"; then
        agentctl done "the keeper process died during cycle $i"
        exit 1
      fi
      i=$((i + 1))
    done
    git add -A
    git commit -q -m "Record the answers"
    agentctl done "10 review cycles"
    ;;
  quick*)
    echo "$AGENTVM_TASK" >quick.txt
    git add -A
    git commit -q -m "Quick change"
    agentctl done "quick task done"
    ;;
  *)
    agentctl done "unknown task: $AGENTVM_TASK"
    exit 1
    ;;
esac
