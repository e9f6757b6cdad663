"""A large, valid import file shaped like production data, for measuring `loyalty-gateway import`.

    python bench/make_import_file.py OUT.jsonl [--customers 1000000] [--orgs 4]

Per customer: one `customer` line (a mobile number and an email, plus a WeChat CUID for every other
customer) and two or three `balance` lines (3.5 lines per customer on average); one fleet per 50
customers, with a pooled balance; the orgs and their three programs come last (records may come in
any order). 1M customers make about 3.54M lines (about 680 MiB).

Peak memory and duration of an import, for example:

    /usr/bin/time -v loyalty-gateway import OUT.jsonl --no-progress 2>&1 | grep -E 'Maximum resident|Elapsed'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


def lines(customers: int, orgs: int) -> Iterator[str]:
    for number in range(customers):
        org_id = 1000 + number % orgs
        customer_id = 10_000_000 + number
        identifiers = [
            f'{{"source":"INSTORE","type":"MOBILE","value":"+91 98{number:08d}"}}',
            f'{{"source":"WEB_ENGAGE","type":"EMAIL","value":"customer.{number}@example.com"}}',
        ]
        if number % 2:
            identifiers.append(f'{{"source":"WECHAT","accountId":"wx-1","type":"CUID","value":"o6_{number:x}"}}')
        yield f'{{"kind":"customer","id":{customer_id},"orgId":{org_id},"identifiers":[{",".join(identifiers)}]}}'
        for program_id in range(org_id * 10, org_id * 10 + (3 if number % 2 else 2)):
            yield (
                f'{{"kind":"balance","orgId":{org_id},"entityType":"CUSTOMER","entityId":{customer_id},'
                f'"programId":{program_id},"mainPoints":"{number % 100_000}.{number % 1000:03d}",'
                f'"delayedAccrualPoints":"{number % 977}.500","externalTriggerBasedPoints":"0.000"}}'
            )
        if number % 50 == 0:
            fleet_id = 90_000_000 + number
            yield (
                f'{{"kind":"fleet","id":{fleet_id},"orgId":{org_id},"externalId":"FLEET-{number}",'
                f'"primaryUserId":{customer_id}}}'
            )
            yield (
                f'{{"kind":"balance","orgId":{org_id},"entityType":"FLEET","entityId":{fleet_id},'
                f'"programId":{org_id * 10},"mainPoints":"{number}.000","delayedAccrualPoints":"0",'
                f'"externalTriggerBasedPoints":"0"}}'
            )
    for org_id in range(1000, 1000 + orgs):
        dual = org_id % 2 == 1
        primary = ',"primaryIdentifier":"MOBILE"' if dual else ""
        yield f'{{"kind":"org","id":{org_id},"name":"Org {org_id}","dualEligibility":{str(dual).lower()}{primary}}}'
        for offset, name in enumerate(("Main", "Partner", "Fuel")):
            default = "true" if offset == 0 else "false"
            program_id = org_id * 10 + offset
            yield f'{{"kind":"program","id":{program_id},"orgId":{org_id},"name":"{name}","default":{default}}}'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the file to write")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=4)
    args = parser.parse_args(argv)
    count = 0
    with args.out.open("w", encoding="utf-8", buffering=1 << 20) as file:
        for line in lines(args.customers, args.orgs):
            file.write(line)
            file.write("\n")
            count += 1
    print(f"wrote {count:,} lines ({args.out.stat().st_size / 2**20:,.0f} MiB) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
