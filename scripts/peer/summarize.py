#!/usr/bin/env python3
"""Summarize the outputs of the peer SCIM suites (called by run-suites.sh).

Inputs: the text output of `scim2 ... test --verbose` (scim2-cli runs
scim2-tester and prints one line per check result), the JSON output of
`scim-sanity probe ... --json-output`, their exit codes and durations, and the
scim-sanity allow-list. Writes a normalized summary JSON, prints a compact
summary, and ends with the line `peer-suites: N passed, M failed`.

Exit status: 0 when no check failed (allow-listed scim-sanity failures,
warnings and skips do not count), 1 otherwise.
"""

import argparse
import json
import re
import sys
from pathlib import Path

# scim2_tester.Status members. SUCCESS/COMPLIANT/ACCEPTABLE are conformant,
# SKIPPED means not run (tag filter, PATCH unsupported, or a 501 on POST
# /.search), the rest are failures. Note `scim2 test` itself exits 1 on any
# non-SUCCESS result, SKIPPED included; we do not count SKIPPED as a failure.
TESTER_PASS = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}
TESTER_SKIP = {"SKIPPED"}
TESTER_FAIL = {"DEVIATION", "ERROR", "CRITICAL"}
TESTER_LINE = re.compile(
    r"^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED) (\S.*)$"
)
TIMEOUT_RC = 124  # exit status of timeout(1)
MAX_TEXT = 600


def clip(text, limit=MAX_TEXT):
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tail(path, lines=8):
    try:
        content = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(content[-lines:])


def read_allow_list(path):
    """Return {check id: reason} from the allow-list (`ID  # reason`)."""
    allowed = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return allowed
    for raw in lines:
        check_id, _, reason = raw.partition("#")
        check_id = check_id.strip()
        if check_id:
            allowed[check_id] = reason.strip()
    return allowed


def parse_tester(text_path, stderr_path, rc):
    results = []
    try:
        lines = Path(text_path).read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    current = None
    for line in lines:
        match = TESTER_LINE.match(line)
        if match:
            status, title = match.groups()
            outcome = (
                "pass" if status in TESTER_PASS
                else "skip" if status in TESTER_SKIP
                else "fail"
            )
            current = {
                "suite": "scim2-tester",
                "id": title.strip(),
                "status": status,
                "outcome": outcome,
                "message": "",
            }
            results.append(current)
        elif current is not None and line.startswith("  "):
            # First indented line is the reason, a second one (--verbose) the data.
            key = "message" if not current["message"] else "data"
            current[key] = clip(line.strip())

    fails = [r for r in results if r["outcome"] == "fail"]
    skips = [r for r in results if r["outcome"] == "skip"]
    problem = None
    if rc == TIMEOUT_RC:
        problem = "scim2-tester run timed out"
    elif "Traceback (most recent call last)" in tail(stderr_path, 400):
        problem = "scim2-cli crashed: " + tail(stderr_path, 3)
    elif rc != 0 and not fails and not skips:
        problem = "scim2 test exited %d: %s" % (rc, tail(stderr_path) or tail(text_path))
    elif not results:
        problem = "scim2 test ran no check (exit %d): %s" % (rc, tail(stderr_path))
    if problem:
        results.append({
            "suite": "scim2-tester", "id": "scim2-tester-run", "status": "ERROR",
            "outcome": "fail", "message": clip(problem),
        })
    return results


def sanity_check_id(result):
    name = result.get("name", "")
    if result.get("phase") == "Cleanup":
        # Cleanup results are named after the created resource id; normalize.
        return "Cleanup: " + re.sub(r"^(\w+ /[^/]+/).*$", r"\1{id}", name)
    return name


def parse_sanity(json_path, stderr_path, rc, allowed):
    results = []
    raw = ""
    try:
        raw = Path(json_path).read_text(errors="replace")
        data = json.loads(raw)
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        why = "timed out" if rc == TIMEOUT_RC else "exited %d without JSON results" % rc
        return [{
            "suite": "scim-sanity", "id": "scim-sanity-run", "status": "error",
            "outcome": "fail",
            "message": clip("scim-sanity %s: %s" % (why, tail(stderr_path) or clip(raw, 300))),
        }], data
    for item in data["results"]:
        status = item.get("status", "")
        check_id = sanity_check_id(item)
        if status == "pass":
            outcome = "pass"
        elif status in ("fail", "error"):
            outcome = "allowed" if check_id in allowed else "fail"
        elif status == "warn":
            outcome = "warn"
        elif status == "skip":
            outcome = "skip"
        else:
            outcome = "fail"
        results.append({
            "suite": "scim-sanity", "id": check_id, "status": status,
            "outcome": outcome, "message": clip(item.get("message", "")),
            "phase": item.get("phase", ""),
        })
    fails = [r for r in results if r["outcome"] == "fail"]
    allowed_fails = [r for r in results if r["outcome"] == "allowed"]
    if rc == TIMEOUT_RC:
        results.append({"suite": "scim-sanity", "id": "scim-sanity-run", "status": "error",
                        "outcome": "fail", "message": "scim-sanity run timed out"})
    elif rc != 0 and not fails and not allowed_fails:
        results.append({"suite": "scim-sanity", "id": "scim-sanity-run", "status": "error",
                        "outcome": "fail",
                        "message": clip("scim-sanity exited %d: %s" % (rc, tail(stderr_path)))})
    return results, data


def count(results, outcome):
    return sum(1 for r in results if r["outcome"] == outcome)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tester-txt", required=True)
    parser.add_argument("--tester-stderr", required=True)
    parser.add_argument("--tester-rc", type=int, required=True)
    parser.add_argument("--tester-secs", type=float, required=True)
    parser.add_argument("--sanity-json", required=True)
    parser.add_argument("--sanity-stderr", required=True)
    parser.add_argument("--sanity-rc", type=int, required=True)
    parser.add_argument("--sanity-secs", type=float, required=True)
    parser.add_argument("--allow", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    allowed = read_allow_list(args.allow)
    tester = parse_tester(args.tester_txt, args.tester_stderr, args.tester_rc)
    sanity, sanity_data = parse_sanity(args.sanity_json, args.sanity_stderr, args.sanity_rc, allowed)

    print("peer SCIM suites against %s" % args.url)

    # -- scim2-tester ------------------------------------------------------
    per_title = {}
    for r in tester:
        entry = per_title.setdefault(r["id"], {"pass": 0, "fail": 0, "skip": 0})
        entry[r["outcome"]] += 1
    print("== scim2-tester (via scim2-cli): %d results: %d passed, %d failed, %d skipped [%.1fs, exit %d]" % (
        len(tester), count(tester, "pass"), count(tester, "fail"), count(tester, "skip"),
        args.tester_secs, args.tester_rc))
    print("   " + ", ".join(
        "%s %d/%d" % (title, c["pass"], c["pass"] + c["fail"] + c["skip"])
        for title, c in per_title.items()))
    for r in tester:
        if r["outcome"] in ("fail", "skip"):
            print("   %-4s %s: %s" % ("FAIL" if r["outcome"] == "fail" else "SKIP",
                                     r["id"], clip(r["message"], 300)))

    # -- scim-sanity -------------------------------------------------------
    mode = sanity_data.get("mode", "?") if isinstance(sanity_data, dict) else "?"
    print("== scim-sanity probe (%s): %d results: %d passed, %d failed, %d allowed, %d warnings, %d skipped [%.1fs, exit %d]" % (
        mode, len(sanity), count(sanity, "pass"), count(sanity, "fail"), count(sanity, "allowed"),
        count(sanity, "warn"), count(sanity, "skip"), args.sanity_secs, args.sanity_rc))
    for r in sanity:
        if r["outcome"] == "pass":
            continue
        label = {"fail": "FAIL", "allowed": "ALLOWED", "warn": "WARN", "skip": "SKIP"}[r["outcome"]]
        extra = ""
        if r["outcome"] == "allowed":
            extra = "  [allow-list: %s]" % clip(allowed.get(r["id"], ""), 160)
        print("   %-7s %s: %s%s" % (label, r["id"], clip(r["message"], 300), extra))
    known_ids = {r["id"] for r in sanity}
    for check_id in allowed:
        if check_id not in known_ids:
            print("   note: allow-list entry %r matches no scim-sanity check in this run" % check_id)

    everything = tester + sanity
    passed = count(everything, "pass")
    failed = count(everything, "fail")
    summary = {
        "url": args.url,
        "passed": passed,
        "failed": failed,
        "suites": {
            "scim2-tester": {
                "exit_code": args.tester_rc, "seconds": round(args.tester_secs, 2),
                "passed": count(tester, "pass"), "failed": count(tester, "fail"),
                "skipped": count(tester, "skip"), "by_check": per_title,
            },
            "scim-sanity": {
                "exit_code": args.sanity_rc, "seconds": round(args.sanity_secs, 2), "mode": mode,
                "passed": count(sanity, "pass"), "failed": count(sanity, "fail"),
                "allowed": count(sanity, "allowed"), "warnings": count(sanity, "warn"),
                "skipped": count(sanity, "skip"),
            },
        },
        "results": everything,
    }
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print("full output: %s" % Path(args.out).parent)
    print("peer-suites: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
