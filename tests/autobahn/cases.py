#!/usr/bin/env python3
"""Print the case ids that wstest will run for CASES minus EXCLUDE, one per line.

Usage: cases.py CASES [EXCLUDE]   (comma lists of case patterns, as for test-server.sh)

Run with the venv's python (setup.sh). It asks the suite itself, through the same
CaseSet.parseSpecCases that fuzzingclient and fuzzingserver use, so the expected set
follows the installed suite rather than a number written down somewhere.
Exit status: 0; 2 when a pattern without '*' names no case (wstest would crash on it
mid-run) or when nothing is selected.
"""
import sys

from autobahntestsuite.case import (Cases, CaseBasename, CaseCategories,
                                    CaseSetname, CaseSubCategories)
from autobahntestsuite.caseset import CaseSet


def split(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    spec = {"cases": split(argv[1]) or ["*"],
            "exclude-cases": split(argv[2]) if len(argv) == 3 else []}
    case_set = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
    known = case_set.CasesIndices
    unknown = [c for c in spec["cases"] + spec["exclude-cases"] if "*" not in c and c not in known]
    if unknown:
        print("cases.py: no such case: %s" % ", ".join(unknown), file=sys.stderr)
        return 2
    ids = case_set.parseSpecCases(spec)
    if not ids:
        print("cases.py: the patterns select no case", file=sys.stderr)
        return 2
    print("\n".join(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
