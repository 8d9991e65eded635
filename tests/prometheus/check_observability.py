#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks the shipped alert rules and the Grafana dashboard against the
metrics docs/METRICS.md lists (which unit.Metrics and
integration.server_metrics.* keep equal to what tetherd and tether-server emit).

Usage:
  check_observability.py --source-dir ROOT rules      promtool check rules and test rules
  check_observability.py --source-dir ROOT names      every metric a rule or a panel uses is documented
  check_observability.py --source-dir ROOT coverage   every alert has a firing and a quiet test
  check_observability.py --source-dir ROOT dashboard  tether.json is a valid dashboard whose
                                                      PromQL promtool parses
Exits 1 with one line per problem.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

RULES = "packaging/prometheus/*-rules.yml"
RULE_TESTS = "tests/prometheus/*.test.yml"
DASHBOARD = "packaging/grafana/tether.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def documented(root):
    """{name: type} from the tables between <!-- *-metrics:begin/end --> markers."""
    with open(os.path.join(root, "docs", "METRICS.md"), encoding="utf-8") as f:
        doc = f.read()
    names = {}
    for body in re.findall(r"<!-- [a-z-]+-metrics:begin -->(.*?)<!-- [a-z-]+-metrics:end -->",
                           doc, re.S):
        for name, kind in re.findall(r"^\| `([a-z_:]+)` \| (\w+) \|", body, re.M):
            names[name] = kind
    return names


def usable(names):
    """The names PromQL may use: a histogram's series carry suffixes."""
    out = set()
    for name, kind in names.items():
        if kind == "histogram":
            out.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            out.add(name)
    return out


def metric_names(expr):
    """tether_* identifiers in a PromQL expression, quoted strings left out."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\btether_[a-zA-Z0-9_:]*", unquoted))


def rule_files(root):
    return sorted(glob.glob(os.path.join(root, RULES)))


def alerts(root):
    """[(file, alert name, expr)] of every shipped rule."""
    out = []
    for path in rule_files(root):
        with open(path, encoding="utf-8") as f:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    out.append((path, rule.get("alert") or rule.get("record"), rule["expr"]))
    return out


def dashboard_exprs(board):
    exprs = []
    for panel in board.get("panels", []):
        for target in panel.get("targets", []):
            exprs.append((panel.get("title", "?"), target.get("expr", "")))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            exprs.append(("$" + variable["name"], query["query"] if isinstance(query, dict)
                          else query))
    return exprs


def check_names(root):
    allowed = usable(documented(root))
    problems = []
    if not allowed:
        problems.append("docs/METRICS.md: no metric tables found")
    for path, name, expr in alerts(root):
        for metric in sorted(metric_names(expr) - allowed):
            problems.append("%s: %s uses %s, which no program emits (docs/METRICS.md)"
                            % (os.path.relpath(path, root), name, metric))
    with open(os.path.join(root, DASHBOARD), encoding="utf-8") as f:
        board = json.load(f)
    for title, expr in dashboard_exprs(board):
        for metric in sorted(metric_names(expr) - allowed):
            problems.append("%s: panel %r uses %s, which no program emits (docs/METRICS.md)"
                            % (DASHBOARD, title, metric))
    return problems


def documented_alerts(root):
    """{alert: (for, severity)} from docs/METRICS.md's alert table."""
    with open(os.path.join(root, "docs", "METRICS.md"), encoding="utf-8") as f:
        doc = f.read()
    body = doc.split("<!-- alerts:begin -->")[1].split("<!-- alerts:end -->")[0]
    return {name: (duration, severity) for name, duration, severity in
            re.findall(r"^\| `(\w+)` \|.*\| (\w+) \| (\w+) \|$", body, re.M)}


def shipped_alerts(root):
    out = {}
    for path in rule_files(root):
        with open(path, encoding="utf-8") as f:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule:
                        out[rule["alert"]] = (rule.get("for", "0m"), rule["labels"]["severity"])
    return out


def check_coverage(root):
    """Every alert is evaluated at least once with exp_alerts and once without,
    and docs/METRICS.md's alert table matches the rules."""
    firing, quiet = set(), set()
    for path in glob.glob(os.path.join(root, RULE_TESTS)):
        with open(path, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        for test in spec.get("tests", []):
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    problems = []
    names = [name for _, name, _ in alerts(root)]
    if not names:
        problems.append("no alert rules found under " + RULES)
    shipped, docs = shipped_alerts(root), documented_alerts(root)
    for name in sorted(set(shipped) | set(docs)):
        if shipped.get(name) != docs.get(name):
            problems.append("docs/METRICS.md alert table says %s for %s, the rules %s"
                            % (docs.get(name), name, shipped.get(name)))
    for name in names:
        if name not in firing:
            problems.append("%s: no test in %s where it fires" % (name, RULE_TESTS))
        if name not in quiet:
            problems.append("%s: no test in %s where it stays quiet" % (name, RULE_TESTS))
    return problems


def check_dashboard(root, promtool):
    problems = []
    with open(os.path.join(root, DASHBOARD), encoding="utf-8") as f:
        try:
            board = json.load(f)
        except ValueError as error:
            return ["%s: not JSON: %s" % (DASHBOARD, error)]
    if not isinstance(board.get("schemaVersion"), int):
        problems.append("%s: no integer schemaVersion" % DASHBOARD)
    for key in ("title", "uid", "panels"):
        if not board.get(key):
            problems.append("%s: no %s" % (DASHBOARD, key))
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    if "instance" not in variables:
        problems.append("%s: no $instance variable" % DASHBOARD)
    ids = [panel.get("id") for panel in board.get("panels", [])]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("%s: panel ids missing or repeated" % DASHBOARD)
    graphs = [p for p in board.get("panels", []) if p.get("type") != "row"]
    if not graphs:
        problems.append("%s: no panels besides rows" % DASHBOARD)
    for panel in graphs:
        targets = panel.get("targets") or []
        if not targets or not all(t.get("expr") for t in targets):
            problems.append("%s: panel %r has no PromQL target" % (DASHBOARD, panel.get("title")))
        for target in targets:
            expr = target.get("expr", "")
            if "$instance" not in expr and "$server" not in expr:
                problems.append("%s: panel %r ignores $instance/$server: %s"
                                % (DASHBOARD, panel.get("title"), expr))
        if "gridPos" not in panel:
            problems.append("%s: panel %r has no gridPos" % (DASHBOARD, panel.get("title")))
    # promtool parses PromQL in rule files: one recording rule per expression,
    # the template variables replaced by what Grafana substitutes.
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs(board)):
        if expr.startswith("label_values("):
            continue  # Grafana's own query syntax, not PromQL
        rules.append({"record": "dashboard:expr_%d" % i,
                      "expr": expr.replace("$instance", ".*").replace("$server", ".*")})
    if promtool is None:
        problems.append("promtool not found (tools/install-deps integration)")
        return problems
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-exprs.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        result = subprocess.run([promtool, "check", "rules", path], capture_output=True,
                                text=True, check=False)
        if result.returncode != 0:
            problems.append("%s: PromQL that promtool refuses:\n%s"
                            % (DASHBOARD, result.stdout + result.stderr))
    return problems


def check_rules(root, promtool):
    """promtool check rules on every shipped file, promtool test rules on every test."""
    if promtool is None:
        return ["promtool not found (tools/install-deps integration)"]
    problems = []
    files = rule_files(root)
    tests = sorted(glob.glob(os.path.join(root, RULE_TESTS)))
    if not files or not tests:
        return ["no rules under %s or no tests under %s" % (RULES, RULE_TESTS)]
    for command in [[promtool, "check", "rules"] + files] + [
            [promtool, "test", "rules", path] for path in tests]:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                cwd=os.path.join(root, "tests", "prometheus"))
        sys.stdout.write(result.stdout + result.stderr)
        if result.returncode != 0:
            problems.append("failed: " + " ".join(command))
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--promtool", default=shutil.which("promtool"))
    parser.add_argument("check", choices=("rules", "names", "coverage", "dashboard"))
    args = parser.parse_args()
    root = args.source_dir
    if args.check == "rules":
        problems = check_rules(root, args.promtool)
    elif args.check == "names":
        problems = check_names(root)
    elif args.check == "coverage":
        problems = check_coverage(root)
    else:
        problems = check_dashboard(root, args.promtool)
    for problem in problems:
        print(problem)
    print("%s: %s" % (args.check, "FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
