"""Nothing is chosen on the test split: every selection is made on validation before a test figure is read.

A selection is anything that picks among candidates by how they score: the checkpoint kept (``best.pt``),
when training stops, a frozen stage given back on a plateau, a decision threshold or temperature, a
detector's score threshold, the arm or cell a target is judged on. The rules below are static (they read the
configs and the drivers' source, run nothing), and each test of a rule also feeds it a broken case, so that
a rule that can no longer fail fails here.

Bundle configs (``bundles/*/configs/*.json`` except ``metadata.json``, each bundle's folder on its own):

1. Every selector — ``BestModelSaver``, ``ValidationEarlyStopping``, MONAI's ``CheckpointSaver`` with
   ``save_key_metric``, ``OperatingPointFitter``, ``ScoreThresholdFitter``, and a freeze policy given an
   ``evaluator=`` — is attached to a *validation evaluator* only: listed in the ``val_handlers`` of an
   evaluator, or named by its ``validator``/``evaluator=``, whose ``val_data_loader`` resolves to a loader
   with ``"split": "val"`` over a dataset whose ``data`` reads ``splits['val']``. Every definition of a
   referenced id (any config file of the bundle) must qualify.
2. The metric a selector follows is a validation metric (``val_...``: a literal name or ``'val_' + ...``).
3. The evaluated split (``@eval_split``, ``test`` by default) feeds the evaluate pass only: its data are read
   at ``evaluate#dataset#data`` and nowhere else, and ``@evaluate#dataloader`` serves ``evaluate#evaluator``
   only; a fitter's ``split_name`` is never ``test``.
4. No config reads what an evaluation wrote (``metrics.json``, ``eval_test``): a test report is never the
   input of a setting (the CenterNet ``inference.json`` used to take its score threshold from there).

And, specifically: the CenterNet test report takes its score threshold from ``ScoreThresholdFitter.fit``
run on ``@validate#dataloader`` and ``inference.json`` reads the record beside its checkpoint; the ABN
``evaluate.json`` operating point fitter runs on ``@validate#dataloader`` and the report applies its record.

Library: the functions that choose (``choose_threshold``, ``fit_temperature``, ``f1_threshold_search``) are
called only by the validation fitters (``monai_xai/handlers/{operating_point,score_threshold}.py``).

Experiment code (``monai_xai/experiments/*.py``, ``scripts/{experiments,benchmarks}/*.py``, by its syntax
tree):

5. No ``max``/``min``/``sorted``/``argmax``/``argmin``/``idxmax``/``idxmin``/``nlargest``/``nsmallest``
   call mentions a test figure: a name, attribute or string in its arguments containing ``test`` (file
   paths and glob patterns, strings with ``/`` or ``*``, are not figures: sorting files is no pick).
6. No function, and no string key of a results file, is named as a pick (``best...``, ``better...``,
   ``winner...``, ``top_...``, ``chosen...``, ``pick...``) without validation provenance in sight: the
   name itself says ``val``, or the function's source reads a validation record (``val_...``, ``validat...``,
   ``best.json``). ``best_epoch`` is the epoch ``best.json`` (validation) recorded.
7. ``monai_xai.experiments.demo_correction`` declares the arm its target is judged on as a module constant
   (``JUDGED_ARM``, one of its ``ARMS``) and judges with it, and so does
   ``monai_xai.experiments.centernet_busi`` (no pick, by rules 5 and 6, over its test figures);
   ``centernet_busi run`` evaluates again an arm whose test metrics do not say their threshold came from
   validation.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
#: where experiment code lives: the experiments package and the measuring scripts
DRIVERS = (
    REPO / "monai_xai" / "experiments",
    REPO / "scripts" / "experiments",
    REPO / "scripts" / "benchmarks",
)

#: selector classes (last part of ``_target_``) that must hang on a validation evaluator
SELECTORS = ("BestModelSaver", "ValidationEarlyStopping", "OperatingPointFitter", "ScoreThresholdFitter")
#: bundle -> the other bundles' config folders it layers on
#: functions that choose something from scores; the only modules allowed to call them
CHOOSERS = ("choose_threshold", "fit_temperature", "f1_threshold_search")
FITTERS = {"monai_xai/handlers/operating_point.py", "monai_xai/handlers/score_threshold.py"}
#: calls that pick an extreme or an order
PICKING_CALLS = ("max", "min", "sorted", "argmax", "argmin", "idxmax", "idxmin", "nlargest", "nsmallest")
PICK_NAME = re.compile(r"^_?(best|better|winner|top|chosen|pick)(_|$)")
VAL_PROVENANCE = re.compile(r"(?<![a-z])val(_|idat|\b)|best\.json", re.IGNORECASE)
#: names of validation records that look like picks
VALIDATION_NAMES = {"best_epoch"}


# ------------------------------------------------------------------------------------------ config model


def _config_files(bundle: str) -> list[Path]:
    return [f for f in sorted((BUNDLES / bundle / "configs").glob("*.json")) if f.name != "metadata.json"]


def _load(bundle: str) -> dict[str, Any]:
    return {str(f.relative_to(REPO)): json.loads(f.read_text()) for f in _config_files(bundle)}


def bundle_names() -> list[str]:
    return sorted(p.parent.parent.name for p in BUNDLES.glob("*/configs/train.json"))


def lookup(configs: dict[str, Any], ref: str) -> list[Any]:
    """Every definition of config id ``ref`` (``a#b#0``, with or without ``@``) in any of ``configs``."""
    ref = ref.lstrip("@")
    found = []
    for config in configs.values():
        if ref in config:
            found.append(config[ref])
            continue
        node: Any = config
        for part in ref.split("#"):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                break
        else:
            found.append(node)
    return found


def walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every value of a config with its path of keys and list indices."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def _refs(text: str) -> list[str]:
    return re.findall(r"@([\w#]+)", text)


def _is_val_evaluator(configs: dict[str, Any], evaluator: Any) -> str | None:
    """None when ``evaluator`` (a config dict) runs on the validation split, else why not."""
    if not isinstance(evaluator, dict) or "val_data_loader" not in evaluator:
        return f"not an evaluator: {str(evaluator)[:80]}"
    loader_ref = evaluator["val_data_loader"]
    loaders = lookup(configs, loader_ref) if isinstance(loader_ref, str) else [loader_ref]
    if not loaders:
        return f"its loader {loader_ref} is not defined"
    for loader in loaders:
        if not isinstance(loader, dict) or loader.get("split") != "val":
            return f"its loader {loader_ref} is not the validation split's ({str(loader)[:80]})"
        dataset_ref = loader.get("dataset")
        datasets = lookup(configs, dataset_ref) if isinstance(dataset_ref, str) else [dataset_ref]
        for dataset in datasets:
            data = dataset.get("data", "") if isinstance(dataset, dict) else str(dataset)
            if not re.search(r"splits\[['\"]val['\"]\]", str(data)):
                return f"its dataset {dataset_ref} reads {data!r}, not splits['val']"
    return None


def _evaluators(configs: dict[str, Any]) -> Iterator[tuple[str, tuple, dict]]:
    for name, config in configs.items():
        for path, node in walk(config):
            if isinstance(node, dict) and "val_handlers" in node and "val_data_loader" in node:
                yield name, path, node


def _handlers_of(configs: dict[str, Any], evaluator: dict) -> list[Any]:
    """The handler objects an evaluator's ``val_handlers`` resolves to (lists by id, expressions by refs)."""
    spec = evaluator["val_handlers"]
    items: list[Any] = []
    for entry in spec if isinstance(spec, list) else [spec]:
        if isinstance(entry, dict):
            items.append(entry)
            continue
        for ref in _refs(str(entry)):
            for found in lookup(configs, ref):
                items.extend(found if isinstance(found, list) else [found])
    return items


def _is_val_metric(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith("val_") or "'val_'" in value or '"val_"' in value)


def selection_violations(configs: dict[str, Any]) -> list[str]:
    """Rules 1 and 2 over a bundle's configs: each message names the file, the place and what is wrong."""
    problems = []
    evaluators = list(_evaluators(configs))
    for name, config in configs.items():
        for path, node in walk(config):
            where = f"{name}: {'#'.join(map(str, path))}"
            if isinstance(node, str) and "evaluator=" in node:
                for ref in re.findall(r"evaluator=@([\w#]+)", node):
                    for evaluator in lookup(configs, ref) or [None]:
                        if (why := _is_val_evaluator(configs, evaluator)) is not None:
                            problems.append(f"{where}: evaluator=@{ref}: {why}")
                for metric in re.findall(r"metric=['\"]([^'\"]+)['\"]", node):
                    if not metric.startswith("val_"):
                        problems.append(f"{where}: follows {metric!r}, not a validation metric")
            if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
                continue
            kind = node["_target_"].rsplit(".", 1)[-1]
            key_metric_saver = kind == "CheckpointSaver" and node.get("save_key_metric") is True
            if kind not in SELECTORS and not key_metric_saver:
                continue
            if str(node.get("split_name", "val")) == "test":
                problems.append(f"{where}: {kind} chooses on split_name 'test'")
            if "metric" in node and not _is_val_metric(node["metric"]):
                problems.append(f"{where}: {kind} follows {node['metric']!r}, not a validation metric")
            if "validator" in node:
                attached = lookup(configs, node["validator"]) or [None]
            else:
                attached = [e for _, _, e in evaluators if any(h is node for h in _handlers_of(configs, e))]
            if not attached:
                problems.append(f"{where}: {kind} is attached to no evaluator")
            for evaluator in attached:
                if (why := _is_val_evaluator(configs, evaluator)) is not None:
                    problems.append(f"{where}: {kind} hangs on an evaluator that is not validation's: {why}")
                elif key_metric_saver and not all(
                    _is_val_metric(k) for k in _key_metric_names(evaluator.get("key_val_metric"))
                ):
                    problems.append(f"{where}: {kind} keeps the best of a non-validation key metric")
    return problems


def _key_metric_names(spec: Any) -> list[str]:
    if isinstance(spec, dict):
        return list(spec)
    return [str(spec)] if spec is not None else ["<none>"]


def split_violations(configs: dict[str, Any]) -> list[str]:
    """Rules 3 and 4: the evaluated split feeds the evaluate pass only; no config reads an evaluation."""
    problems = []
    for name, config in configs.items():
        for path, node in walk(config):
            if not isinstance(node, str):
                continue
            where = f"{name}: {'#'.join(map(str, path))}"
            if re.search(r"splits\[\s*(@eval_split|['\"]test['\"])\s*\]", node) and path != (
                "evaluate",
                "dataset",
                "data",
            ):
                problems.append(f"{where}: reads the evaluated split outside evaluate#dataset#data")
            if "@evaluate#dataloader" in node and path != ("evaluate", "evaluator", "val_data_loader"):
                problems.append(f"{where}: the evaluated split's loader serves {'#'.join(map(str, path))}")
            if "metrics.json" in node or "eval_test" in node:
                problems.append(f"{where}: reads an evaluation's output ({node[:90]})")
    return problems


# ------------------------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("bundle", bundle_names())
def test_selectors_hang_on_validation_evaluators_and_follow_validation_metrics(bundle):
    assert selection_violations(_load(bundle)) == []


@pytest.mark.parametrize("bundle", bundle_names())
def test_the_evaluated_split_feeds_the_evaluate_pass_only(bundle):
    assert split_violations(_load(bundle)) == []


def test_every_bundle_with_a_selector_is_checked():
    """The rules see the selectors at all: each bundle that trains keeps a best checkpoint somewhere."""
    assert set(bundle_names()) >= {"abn_classification", "centernet_detection", "agcyclegan_explainer"}
    for bundle in ("abn_classification", "centernet_detection", "agcyclegan_explainer"):
        kinds = {
            node["_target_"].rsplit(".", 1)[-1]
            for config in _load(bundle).values()
            for _, node in walk(config)
            if isinstance(node, dict) and isinstance(node.get("_target_"), str)
        }
        assert {"BestModelSaver", "ValidationEarlyStopping"} <= kinds, bundle


def _centernet() -> dict[str, Any]:
    return _load("centernet_detection")


def test_centernet_score_threshold_comes_from_validation():
    configs = _centernet()
    evaluate = configs["bundles/centernet_detection/configs/evaluate.json"]
    fitter, evaluator = evaluate["score_threshold"]["fitter"], evaluate["score_threshold"]["evaluator"]
    assert fitter["_target_"].endswith("ScoreThresholdFitter") and fitter.get("split_name", "val") == "val"
    assert evaluator["val_data_loader"] == "@validate#dataloader"
    assert evaluator["val_handlers"] == ["@score_threshold#fitter"]
    assert _is_val_evaluator(configs, evaluator) is None
    report = evaluate["evaluate"]["report"]
    assert report["score_threshold"] == "$@score_threshold#fitter.fit(@score_threshold#evaluator)"
    assert evaluate["evaluate"]["evaluator"]["val_data_loader"] == "@evaluate#dataloader"
    inference = configs["bundles/centernet_detection/configs/inference.json"]
    assert inference["score_threshold"] == "$monai_xai.networks.score_threshold_of(@ckpt_path, default=0.3)"
    writer = [h for h in inference["handlers"] if h["_target_"].endswith("DetectionSaver")]
    assert writer[0]["score_threshold"] == "@score_threshold"


def test_abn_operating_point_is_fitted_on_the_validation_loader():
    configs = _load("abn_classification")
    evaluate = configs["bundles/abn_classification/configs/evaluate.json"]
    point = evaluate["operating_point"]
    assert point["fitter"]["_target_"].endswith("OperatingPointFitter")
    assert point["evaluator"]["val_data_loader"] == "@validate#dataloader"
    assert point["evaluator"]["val_handlers"] == ["@operating_point#fitter"]
    assert _is_val_evaluator(configs, point["evaluator"]) is None
    report = evaluate["evaluate"]["report"]
    assert report["operating_point"] == "$@operating_point#fitter.fit(@operating_point#evaluator)"


def test_best_model_and_early_stopping_hang_on_validation_only():
    """Where each BestModelSaver and ValidationEarlyStopping of every bundle is attached, by name."""
    seen = []
    for bundle in bundle_names():
        configs = _load(bundle)
        evaluators = list(_evaluators(configs))
        for name, config in configs.items():
            for path, node in walk(config):
                kind = node.get("_target_", "").rsplit(".", 1)[-1] if isinstance(node, dict) else ""
                if kind == "ValidationEarlyStopping":
                    assert node["validator"] == "@validate#evaluator", (name, path)
                    seen.append((bundle, kind))
                elif kind == "BestModelSaver":
                    hosts = [
                        "#".join(map(str, p))
                        for _, p, e in evaluators
                        if any(h is node for h in _handlers_of(configs, e))
                    ]
                    assert hosts and set(hosts) == {"validate#evaluator"}, (name, path, hosts)
                    seen.append((bundle, kind))
    assert {b for b, _ in seen} >= {"abn_classification", "centernet_detection", "agcyclegan_explainer"}


def _broken(configs: dict[str, Any], file: str, edit) -> dict[str, Any]:
    copy = json.loads(json.dumps(configs))
    edit(copy[file])
    return copy


CN_TRAIN = "bundles/centernet_detection/configs/train.json"
CN_EVALUATE = "bundles/centernet_detection/configs/evaluate.json"
CN_INFERENCE = "bundles/centernet_detection/configs/inference.json"
ABN_EVALUATE = "bundles/abn_classification/configs/evaluate.json"


def _best_saver_on_test(cfg):  # the best checkpoint kept by the evaluate pass (the test split)
    saver = next(h for h in cfg["validate"]["handlers"] if h["_target_"].endswith("BestModelSaver"))
    cfg["validate"]["handlers"].remove(saver)
    cfg["evaluate"] = {"evaluator": {"val_data_loader": "@evaluate#dataloader", "val_handlers": [saver]}}


def _early_stopping(cfg) -> dict:
    """The early-stopping item of the training handlers."""
    return next(h for h in cfg["train"]["handlers"] if "ValidationEarlyStopping" in str(h.get("_target_")))


def _early_stopping_on_test(cfg):
    _early_stopping(cfg)["validator"] = "@evaluate#evaluator"


def _early_stopping_on_test_metric(cfg):
    _early_stopping(cfg)["metric"] = "test_mAP"


def _freeze_policy_on_test(cfg):
    cfg["train"]["freeze"] = cfg["train"]["freeze"].replace("@validate#evaluator", "@evaluate#evaluator")


def _threshold_fitted_on_test(cfg):
    cfg["score_threshold"]["evaluator"]["val_data_loader"] = "@evaluate#dataloader"


def _threshold_fitter_split_test(cfg):
    cfg["score_threshold"]["fitter"]["split_name"] = "test"


def _validation_loader_reads_test(cfg):
    cfg["validate"]["dataset"]["data"] = "$@splits['test']"


@pytest.mark.parametrize(
    "file, edit, expected",
    [
        (CN_TRAIN, _best_saver_on_test, "BestModelSaver hangs on an evaluator that is not validation's"),
        (CN_TRAIN, _early_stopping_on_test, "ValidationEarlyStopping hangs on an evaluator that is not"),
        (CN_TRAIN, _early_stopping_on_test_metric, "follows 'test_mAP', not a validation metric"),
        (CN_TRAIN, _freeze_policy_on_test, "evaluator=@evaluate#evaluator: its loader @evaluate#dataloader"),
        (CN_EVALUATE, _threshold_fitted_on_test, "ScoreThresholdFitter hangs on an evaluator that is not"),
        (CN_EVALUATE, _threshold_fitter_split_test, "ScoreThresholdFitter chooses on split_name 'test'"),
        (CN_TRAIN, _validation_loader_reads_test, "reads \"$@splits['test']\", not splits['val']"),
    ],
)
def test_the_selection_rules_fail_on_a_selection_moved_to_test(file, edit, expected):
    problems = selection_violations(_broken(_centernet(), file, edit))
    assert any(expected in p for p in problems), problems


def test_the_split_rules_fail_on_the_old_centernet_inference_and_a_leaked_loader():
    def old_inference(cfg):  # the threshold the test evaluation had searched, as inference.json read it
        cfg["eval_metrics"] = "$os.path.join(@output_dir, 'eval_test', 'metrics.json')"
        cfg["score_threshold"] = "$monai_xai.metrics.reported_f1_threshold(@eval_metrics, default=0.3)"

    problems = split_violations(_broken(_centernet(), CN_INFERENCE, old_inference))
    assert any("inference.json: eval_metrics: reads an evaluation's output" in p for p in problems), problems

    def leaked(cfg):
        cfg["score_threshold"]["evaluator"]["val_data_loader"] = "@evaluate#dataloader"

    problems = split_violations(_broken(_centernet(), CN_EVALUATE, leaked))
    assert any("the evaluated split's loader serves score_threshold#evaluator" in p for p in problems)

    def abn_fitted_on_test(cfg):
        cfg["operating_point"]["evaluator"]["val_data_loader"] = "@evaluate#dataloader"

    broken = _broken(_load("abn_classification"), ABN_EVALUATE, abn_fitted_on_test)
    problems = selection_violations(broken)
    assert any("OperatingPointFitter hangs on an evaluator that is not" in p for p in problems), problems


# ------------------------------------------------------------------------------------------------ library


def chooser_calls(root: Path, relative_to: Path = REPO) -> list[str]:
    """``file:line name`` of every call to a choosing function outside the validation fitters."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = str(path.relative_to(relative_to))
        if relative in FITTERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in CHOOSERS:
                    found.append(f"{relative}:{node.lineno} {name}")
    return found


def test_only_the_validation_fitters_choose_thresholds_and_temperatures(tmp_path):
    assert chooser_calls(REPO / "monai_xai") + chooser_calls(REPO / "scripts") == []
    report = tmp_path / "monai_xai" / "handlers" / "detection_report.py"
    report.parent.mkdir(parents=True)
    report.write_text("def write(p, t):\n    return f1_threshold_search(p, t, 2)\n")  # the old report
    assert chooser_calls(tmp_path / "monai_xai", tmp_path) == [
        "monai_xai/handlers/detection_report.py:2 f1_threshold_search"
    ]


# ------------------------------------------------------------------------------------------------ drivers


def _call_name(node: ast.Call) -> str | None:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", None)


def _word(node: ast.AST) -> str:
    """The name, attribute or string a node holds ("" for a path or glob pattern, and for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and not re.search(r"[/*]", node.value):
        return node.value
    return ""


def _mentions_test(node: ast.AST) -> bool:
    return any("test" in _word(sub).lower() for sub in ast.walk(node))


def picks_over_test_figures(source: str) -> list[str]:
    """Rule 5: ``line: call`` of each picking call whose arguments mention a test figure."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _call_name(node) in PICKING_CALLS:
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if any(_mentions_test(a) for a in arguments):
                found.append(f"{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def unproven_picks(source: str) -> list[str]:
    """Rule 6: names of functions and string keys that say they pick, without validation provenance."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and PICK_NAME.match(node.name):
            if not VAL_PROVENANCE.search(node.name) and not VAL_PROVENANCE.search(ast.unparse(node)):
                found.append(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value
            if re.fullmatch(r"[a-z][a-z0-9_]*", name) and PICK_NAME.match(name) and "_" in name:
                if name not in VALIDATION_NAMES and not VAL_PROVENANCE.search(name):
                    found.append(name)
    return sorted(set(found))


def _drivers() -> list[Path]:
    return sorted(path for folder in DRIVERS for path in folder.glob("*.py"))


@pytest.mark.parametrize("driver", _drivers(), ids=lambda p: p.name)
def test_no_driver_picks_over_test_figures(driver):
    assert picks_over_test_figures(driver.read_text()) == []
    unknown = unproven_picks(driver.read_text())
    assert unknown == [], (
        f"{driver.name} picks by test figures: {unknown} (choose on validation, or declare the choice)"
    )


def test_the_driver_rules_fail_on_the_old_demo_correction():
    """The selection demo_correction.py made before: the arm with the higher test mean, its best test cell."""
    old = '''
def best_up_to(after, max_fraction):
    """The highest test accuracy with at most ``max_fraction`` corrected (the smaller fraction on a tie)."""
    strategy, fraction, accuracy = max(_up_to(after, max_fraction), key=lambda c: (c[2], -float(c[1])))
    return {"strategy": strategy, "fraction": float(fraction), "test_accuracy": accuracy}


def better_arm(arms):
    return max(arms, key=lambda name: arms[name]["mean_accuracy_up_to_target"])


def results(before, per_arm):
    arm = better_arm(per_arm)
    best = max(per_arm[arm]["cells"], key=lambda c: c["test_accuracy"])
    return {"arm": arm, "best_after": best, "best_up_to_target": best}
'''
    assert unproven_picks(old) == ["best_after", "best_up_to", "best_up_to_target", "better_arm"]
    assert [p.split(":")[0] for p in picks_over_test_figures(old)] == ["14"]
    chosen_on_validation = """
def chosen_arm(arms, training):
    return max(arms, key=lambda arm: training[arm]["val_flip_rate_min"])
"""
    assert unproven_picks(chosen_on_validation) == [] and picks_over_test_figures(chosen_on_validation) == []


def test_demo_correction_judges_the_arm_it_declared():
    source = (REPO / "monai_xai" / "experiments" / "demo_correction.py").read_text()
    tree = ast.parse(source)
    constants = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    judged = constants.get("JUDGED_ARM")
    assert isinstance(judged, ast.Constant) and isinstance(judged.value, str), "JUDGED_ARM: a string constant"
    arms = constants["ARMS"]
    assert isinstance(arms, ast.Dict) and judged.value in [k.value for k in arms.keys]
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "JUDGED_ARM" in ast.unparse(functions["target_check"])
    calls = [_call_name(n) for n in ast.walk(functions["results"]) if isinstance(n, ast.Call)]
    assert not set(calls) & set(PICKING_CALLS), calls


def test_centernet_busi_judges_the_arm_it_declared():
    """The AP50 target used to take the best of four arms on test; the module now declares the arm."""
    from monai_xai.experiments import centernet_busi

    source = (REPO / "monai_xai" / "experiments" / "centernet_busi.py").read_text()
    assert (
        centernet_busi.JUDGED_ARM in centernet_busi.ARMS
        and centernet_busi.BASELINE_ARM in centernet_busi.ARMS
    )
    assert picks_over_test_figures(source) == [] and unproven_picks(source) == []
    functions = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    assert "JUDGED_ARM" in ast.unparse(functions["targets"])
    old = """
def targets(arms, probe):
    best = max(arms, key=lambda name: arms[name]["ap50"])
    return {"best_arm": best, "best_ap50": arms[best]["ap50"]}
"""
    assert unproven_picks(old) == ["best_ap50", "best_arm"]


def test_centernet_driver_evaluates_again_what_the_test_split_thresholded(tmp_path):
    from monai_xai.experiments.centernet_busi import RECORD_KEYS, stale_output

    eval_dir = tmp_path / "random_init" / "eval_test"
    eval_dir.mkdir(parents=True)
    (eval_dir / "predictions.json").write_text(json.dumps([dict.fromkeys(RECORD_KEYS, [])]))
    for recorded in ({"threshold_split": "test"}, {}):  # a metrics.json alone does not make it done
        (eval_dir / "metrics.json").write_text(json.dumps(recorded))
        assert "validation split" in stale_output("random_init/evaluate", tmp_path)
    (eval_dir / "metrics.json").write_text(json.dumps({"threshold_split": "val"}))
    assert stale_output("random_init/evaluate", tmp_path) is None
