#!/usr/bin/env bash
# Learning curves from `graft finetune` run directories (their log.jsonl), as one PNG:
# training loss per optimizer step (and its moving average), validation loss per evaluation, and
# accuracy: validation per evaluation (dots) and training (the moving average of each step's
# batch accuracy, dashed), one colour per run, so several runs (e.g. the strategies of recipes/)
# compare in one figure.
#   scripts/plot-runs.sh OUT.png RUN_DIR [RUN_DIR ...]
# Installs Debian's python3-matplotlib when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
(($# >= 2)) || { echo "usage: scripts/plot-runs.sh OUT.png RUN_DIR [RUN_DIR ...]" >&2; exit 2; }
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib >&2
fi
/usr/bin/python3 - "$@" <<'PY'
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out, runs = sys.argv[1], sys.argv[2:]
fig, (ax_loss, ax_val_loss, ax_val_acc) = plt.subplots(1, 3, figsize=(16, 4.5))
for run in runs:
    path = os.path.join(run, "log.jsonl")
    if not os.path.exists(path):
        sys.exit(f"plot-runs: {path} is missing (is {run} a graft finetune output_dir?)")
    steps, losses, train_acc, evals = [], [], [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot-runs: {path}:{number}: not JSON ({e})")
            if record.get("event") == "step":
                steps.append(record["step"])
                losses.append(record["loss"])
                train_acc.append(record.get("train_accuracy"))
            elif record.get("event") == "eval":
                evals.append(record)
    name = os.path.basename(os.path.normpath(run))
    line, = ax_loss.plot(steps, losses, alpha=0.25)
    window = max(1, len(losses) // 50)

    def moving_average(values):
        return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
                for i in range(len(values))]

    ax_loss.plot(steps, moving_average(losses), color=line.get_color(), label=name)
    if train_acc and all(a is not None for a in train_acc):  # logs from before train_accuracy lack it
        ax_val_acc.plot(steps, moving_average(train_acc), "--", color=line.get_color(), alpha=0.6)
    eval_steps = [e["step"] for e in evals]
    ax_val_loss.plot(eval_steps, [e["loss"] for e in evals], "o-", color=line.get_color(), label=name)
    if evals and "accuracy" in evals[0]:
        ax_val_acc.plot(eval_steps, [e["accuracy"] for e in evals], "o-", color=line.get_color(), label=name)
for ax, title in ((ax_loss, "training loss (per step; line: moving average)"),
                  (ax_val_loss, "validation loss"), (ax_val_acc, "accuracy (dots: validation; dashed: training)")):
    ax.set_title(title)
    ax.set_xlabel("optimizer step")
    ax.grid(alpha=0.3)
ax_val_acc.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out, dpi=110)
print(f"plot-runs: wrote {out} ({len(runs)} run(s))")
PY
