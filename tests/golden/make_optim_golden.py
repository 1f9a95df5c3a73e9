#!/usr/bin/python3
"""Goldens for train/optim: optimizer trajectories and LR curves from PyTorch (f64).

Run with the Debian PyTorch: /usr/bin/python3 tests/golden/make_optim_golden.py
Writes tests/golden/optim/{optimizers,schedulers,clip}.json. Deterministic: fixed data, no RNG.

optimizers.json: a fixed problem (y = x W^T + b, MSE loss on a fixed batch), initial W [4, 3] and
b [4], and for each config the parameters after each of STEPS steps. L1 is emulated by adding
l1 * sign(p) to the gradients before step() (graft adds it to the gradient first, then L2).
schedulers.json: for each scheduler, with two SGD groups of base lr 0.1 and 0.02, the lr of each
group at step 0 (after construction) and after each step(); OneCycle also records momentum/beta1.
clip.json: clip_grad_norm_ of fixed grads for norm types 2, 1, 3, inf.
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim")
STEPS = 5


def fixed(shape, a, b):
    """Deterministic, irregular values: a sine pattern scaled to roughly [-b, b]."""
    n = math.prod(shape)
    return torch.tensor([b * math.sin(a * (k + 1) + 0.3 * k * k) for k in range(n)]).reshape(shape)


W0 = fixed((4, 3), 1.7, 0.5)
B0 = fixed((4,), 0.9, 0.1)
X = fixed((6, 3), 2.3, 1.0)
Y = fixed((6, 4), 0.7, 1.0)

# group hyper-parameters use graft's field names; "params" lists indices into [W, b].
OPTIMIZER_CONFIGS = {
    "sgd_plain": ("SGD", [{"params": [0, 1], "lr": 0.1}]),
    "sgd_momentum": ("SGD", [{"params": [0, 1], "lr": 0.1, "momentum": 0.9}]),
    "sgd_nesterov": ("SGD", [{"params": [0, 1], "lr": 0.1, "momentum": 0.9, "nesterov": True}]),
    "sgd_weight_decay": ("SGD", [{"params": [0, 1], "lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}]),
    "sgd_dampening": ("SGD", [{"params": [0, 1], "lr": 0.1, "momentum": 0.8, "dampening": 0.3}]),
    "sgd_l1": ("SGD", [{"params": [0, 1], "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "l1": 0.02}]),
    "sgd_two_groups": ("SGD", [{"params": [0], "lr": 0.1, "momentum": 0.9, "weight_decay": 0.05},
                               {"params": [1], "lr": 0.03, "momentum": 0.5, "nesterov": True}]),
    "adam": ("Adam", [{"params": [0, 1], "lr": 0.01}]),
    "adam_weight_decay": ("Adam", [{"params": [0, 1], "lr": 0.01, "weight_decay": 0.1}]),
    "adam_amsgrad": ("Adam", [{"params": [0, 1], "lr": 0.01, "beta1": 0.8, "beta2": 0.9, "amsgrad": True}]),
    "adam_l1": ("Adam", [{"params": [0, 1], "lr": 0.01, "weight_decay": 0.05, "l1": 0.03}]),
    "adam_two_groups": ("Adam", [{"params": [0], "lr": 0.01, "weight_decay": 0.1, "beta1": 0.85},
                                 {"params": [1], "lr": 0.003, "beta2": 0.95, "eps": 1e-6}]),
    "adamw": ("AdamW", [{"params": [0, 1], "lr": 0.01, "weight_decay": 0.1}]),
    "adamw_amsgrad": ("AdamW", [{"params": [0, 1], "lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "beta2": 0.9}]),
    "adamw_l1": ("AdamW", [{"params": [0, 1], "lr": 0.01, "weight_decay": 0.1, "l1": 0.03}]),
    "adamw_two_groups": ("AdamW", [{"params": [0], "lr": 0.02, "weight_decay": 0.2},
                                   {"params": [1], "lr": 0.005, "weight_decay": 0.0, "beta1": 0.7}]),
}


def torch_group(group, params):
    g = {"params": [params[i] for i in group["params"]], "lr": group["lr"],
         "weight_decay": group.get("weight_decay", 0.0)}
    return g


def make_optimizer(kind, groups, params):
    tgroups = []
    for group in groups:
        g = torch_group(group, params)
        if kind == "SGD":
            g.update(momentum=group.get("momentum", 0.0), dampening=group.get("dampening", 0.0),
                     nesterov=group.get("nesterov", False))
        else:
            g.update(betas=(group.get("beta1", 0.9), group.get("beta2", 0.999)), eps=group.get("eps", 1e-8),
                     amsgrad=group.get("amsgrad", False))
        tgroups.append(g)
    cls = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[kind]
    return cls(tgroups, lr=tgroups[0]["lr"], foreach=False)


def run_optimizer(kind, groups):
    w = W0.clone().requires_grad_()
    b = B0.clone().requires_grad_()
    params = [w, b]
    opt = make_optimizer(kind, groups, params)
    l1 = {i: group.get("l1", 0.0) for group in groups for i in group["params"]}
    trajectory = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(X @ w.t() + b, Y)
        loss.backward()
        with torch.no_grad():
            for i, p in enumerate(params):
                if l1[i]:
                    p.grad.add_(torch.sign(p), alpha=l1[i])
        opt.step()
        trajectory.append({"loss": loss.item(), "W": w.detach().flatten().tolist(), "b": b.detach().tolist()})
    return trajectory


def optimizers_golden():
    configs = {}
    for name, (kind, groups) in OPTIMIZER_CONFIGS.items():
        configs[name] = {"optimizer": kind, "groups": groups, "trajectory": run_optimizer(kind, groups)}
    return {"problem": {"W": W0.flatten().tolist(), "W_shape": [4, 3], "b": B0.tolist(), "x": X.flatten().tolist(),
                        "x_shape": [6, 3], "y": Y.flatten().tolist(), "y_shape": [6, 4], "loss": "mse_mean",
                        "steps": STEPS},
            "configs": configs}


# --- schedulers ---

BASE_LRS = [0.1, 0.02]
SCHED_STEPS = 30


def hf_constant(warmup):
    return lambda s: s / max(1, warmup) if s < warmup else 1.0


def hf_linear(warmup, total):
    def f(s):
        if s < warmup:
            return float(s) / float(max(1, warmup))
        return max(0.0, float(total - s) / float(max(1, total - warmup)))
    return f


def hf_cosine(warmup, total, num_cycles=0.5):
    def f(s):
        if s < warmup:
            return float(s) / float(max(1, warmup))
        progress = float(s - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))
    return f


def stlr(total, cut_frac, ratio):
    """Howard & Ruder 2018, eq. 3, with p held at >= 0 past the end (as graft)."""
    cut = math.floor(total * cut_frac)

    def f(t):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
        return (1 + max(p, 0.0) * (ratio - 1)) / ratio
    return f


def sched_optimizer(kind="SGD"):
    ps = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    groups = [{"params": [ps[0]], "lr": BASE_LRS[0]}, {"params": [ps[1]], "lr": BASE_LRS[1]}]
    if kind == "SGD":
        return torch.optim.SGD(groups, lr=BASE_LRS[0], momentum=0.9)
    return torch.optim.Adam(groups, lr=BASE_LRS[0])


def record(opt, sched, steps, momentum_key=None, metrics=None):
    lrs, momenta = [], []

    def snap():
        lrs.append([g["lr"] for g in opt.param_groups])
        if momentum_key == "momentum":
            momenta.append([g["momentum"] for g in opt.param_groups])
        elif momentum_key == "beta1":
            momenta.append([g["betas"][0] for g in opt.param_groups])

    snap()
    for k in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[k])
        snap()
    out = {"lr": lrs}
    if momentum_key:
        out["momentum"] = momenta
    return out


def schedulers_golden():
    L = torch.optim.lr_scheduler
    curves = {}

    def lam(name, args, f, steps=SCHED_STEPS):
        opt = sched_optimizer()
        curves[name] = {"args": args, **record(opt, L.LambdaLR(opt, f), steps)}

    lam("constant", {"warmup_steps": 0}, hf_constant(0))
    lam("constant_warmup", {"warmup_steps": 6}, hf_constant(6))
    lam("linear_warmup", {"warmup_steps": 5, "total_steps": 25}, hf_linear(5, 25))
    lam("cosine_warmup", {"warmup_steps": 5, "total_steps": 25, "num_cycles": 0.5}, hf_cosine(5, 25))
    lam("cosine_two_cycles", {"warmup_steps": 0, "total_steps": 30, "num_cycles": 2.0}, hf_cosine(0, 30, 2.0))
    lam("stlr", {"total_steps": 30, "cut_frac": 0.1, "ratio": 32.0}, stlr(30, 0.1, 32.0))
    lam("stlr_uneven", {"total_steps": 25, "cut_frac": 0.3, "ratio": 10.0}, stlr(25, 0.3, 10.0))

    opt = sched_optimizer()
    curves["step_lr"] = {"args": {"step_size": 7, "gamma": 0.5}, **record(opt, L.StepLR(opt, 7, 0.5), SCHED_STEPS)}
    opt = sched_optimizer()
    curves["exponential"] = {"args": {"gamma": 0.9}, **record(opt, L.ExponentialLR(opt, 0.9), SCHED_STEPS)}

    def one_cycle(name, kind, args):
        opt = sched_optimizer(kind)
        sched = L.OneCycleLR(opt, max_lr=args["max_lr"], total_steps=args["total_steps"], pct_start=args["pct_start"],
                             anneal_strategy=args["anneal"], cycle_momentum=args["cycle_momentum"],
                             base_momentum=args["base_momentum"], max_momentum=args["max_momentum"],
                             div_factor=args["div_factor"], final_div_factor=args["final_div_factor"],
                             three_phase=args["three_phase"])
        key = None if not args["cycle_momentum"] else ("momentum" if kind == "SGD" else "beta1")
        curves[name] = {"args": {**args, "optimizer": kind}, **record(opt, sched, args["total_steps"], key)}

    base = {"max_lr": [1.0, 0.3], "total_steps": 30, "pct_start": 0.3, "anneal": "cos", "cycle_momentum": True,
            "base_momentum": 0.85, "max_momentum": 0.95, "div_factor": 25.0, "final_div_factor": 1e4,
            "three_phase": False}
    one_cycle("one_cycle_sgd", "SGD", base)
    one_cycle("one_cycle_adam_linear_three_phase", "Adam",
              {**base, "anneal": "linear", "three_phase": True, "pct_start": 0.25, "base_momentum": 0.8,
               "max_momentum": 0.9, "div_factor": 10.0, "final_div_factor": 100.0})
    one_cycle("one_cycle_no_momentum", "SGD", {**base, "cycle_momentum": False, "total_steps": 23, "pct_start": 0.4})

    metrics = [1.0, 0.9, 0.85, 0.86, 0.87, 0.849, 0.88, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.79, 0.85,
               0.86, 0.87, 0.88, 0.7, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.6, 0.6, 0.6, 0.6]

    def plateau(name, args, values):
        opt = sched_optimizer()
        sched = L.ReduceLROnPlateau(opt, mode=args["mode"], factor=args["factor"], patience=args["patience"],
                                    threshold=args["threshold"], threshold_mode=args["threshold_mode"],
                                    cooldown=args["cooldown"], min_lr=args["min_lr"], eps=args["eps"])
        curves[name] = {"args": args, "metrics": values, **record(opt, sched, len(values), metrics=values)}

    plateau("plateau_min_rel", {"mode": "min", "factor": 0.5, "patience": 2, "threshold": 1e-2,
                                "threshold_mode": "rel", "cooldown": 1, "min_lr": [0.01, 0.004], "eps": 1e-8}, metrics)
    plateau("plateau_max_abs", {"mode": "max", "factor": 0.3, "patience": 1, "threshold": 0.02,
                                "threshold_mode": "abs", "cooldown": 0, "min_lr": [0.0, 0.0], "eps": 1e-8},
            [-m for m in metrics])
    return {"base_lrs": BASE_LRS, "curves": curves}


def clip_golden():
    """torch.nn.utils.clip_grad_norm_ on three fixed grads for several norm types and max norms."""
    grads = [fixed((3, 4), 1.3, 2.0), fixed((5,), 0.4, 3.0), fixed((2, 2), 2.9, 0.5)]
    cases = []
    for norm_type in (2.0, 1.0, 3.0, math.inf):
        for max_norm in (0.5, 4.0, 1e3):
            ps = [torch.zeros_like(g, requires_grad=True) for g in grads]
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type).item()
            cases.append({"norm_type": "inf" if math.isinf(norm_type) else norm_type, "max_norm": max_norm,
                          "total_norm": total, "clipped": [p.grad.flatten().tolist() for p in ps]})
    return {"grads": [g.flatten().tolist() for g in grads], "shapes": [list(g.shape) for g in grads],
            "cases": cases}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in (("optimizers", optimizers_golden()), ("schedulers", schedulers_golden()),
                       ("clip", clip_golden())):
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            json.dump({"torch_version": torch.__version__, **data}, f, separators=(",", ":"))
            f.write("\n")
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
