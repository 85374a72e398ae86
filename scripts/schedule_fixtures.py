"""Learning rates PyTorch's schedulers give at each optimizer step, for ScheduleTests.

Writes Tests/TrainingTests/Fixtures/schedules.json. Run with the peers' torch:
    .venv-onnx/bin/python scripts/schedule_fixtures.py
Each case lists the rate in force at steps 0, 1, 2, … (read before that step's
optimizer.step()). Warmup cases use transformers' get_*_schedule_with_warmup lambdas
(copied here, as LambdaLR), so transformers itself is not needed.
"""
import json
import math
import os

import torch


def rates(make_scheduler, base, steps, per_epoch=None):
    """The lr before each of `steps` optimizer steps; the scheduler steps every step, or every
    `per_epoch` steps (an epoch-wise scheduler such as StepLR)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make_scheduler(opt)
    out = []
    for s in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if per_epoch is None or (s + 1) % per_epoch == 0:
            sched.step()
    return out


def cosine_with_warmup(warmup, total):  # transformers' _get_cosine_schedule_with_warmup_lr_lambda
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return f


def constant_with_warmup(warmup):  # transformers' _get_constant_schedule_with_warmup_lr_lambda
    return lambda step: float(step) / float(max(1.0, warmup)) if step < warmup else 1.0


S = torch.optim.lr_scheduler
cases = [
    dict(name="step 3 0.1", schedule="step 3 0.1", base=0.01, warmup=0, steps=40, batches_per_epoch=4,
         rates=rates(lambda o: S.StepLR(o, step_size=3, gamma=0.1), 0.01, 40, per_epoch=4)),
    dict(name="step 2 0.5", schedule="step 2 0.5", base=0.003, warmup=0, steps=21, batches_per_epoch=3,
         rates=rates(lambda o: S.StepLR(o, step_size=2, gamma=0.5), 0.003, 21, per_epoch=3)),
    dict(name="cosine", schedule="cosine", base=0.003, warmup=0, steps=20, batches_per_epoch=5,
         rates=rates(lambda o: S.CosineAnnealingLR(o, T_max=20), 0.003, 20)),
    dict(name="cosine warmup", schedule="cosine", base=0.001, warmup=5, steps=23, batches_per_epoch=23,
         rates=rates(lambda o: S.LambdaLR(o, cosine_with_warmup(5, 23)), 0.001, 23)),
    dict(name="onecycle", schedule="onecycle 0.01", base=0.003, warmup=0, steps=25, batches_per_epoch=5,
         rates=rates(lambda o: S.OneCycleLR(o, max_lr=0.01, total_steps=25, cycle_momentum=False), 0.003, 25)),
    dict(name="onecycle short", schedule="onecycle", base=0.002, warmup=0, steps=7, batches_per_epoch=7,
         rates=rates(lambda o: S.OneCycleLR(o, max_lr=0.002, total_steps=7, cycle_momentum=False), 0.002, 7)),
    dict(name="constant warmup", schedule="constant", base=0.003, warmup=4, steps=10, batches_per_epoch=5,
         rates=rates(lambda o: S.LambdaLR(o, constant_with_warmup(4)), 0.003, 10)),
]
path = os.path.join(os.path.dirname(__file__), "..", "Tests", "TrainingTests", "Fixtures", "schedules.json")
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path))
