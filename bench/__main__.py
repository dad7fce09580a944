"""`make bench`: a table on stderr, then one JSON line of figures on stdout."""

import json
import sys

from bench import crypto, hsm, identity, licence, ofd, seal, storage

SUITES = {"crypto": crypto.run, "hsm": hsm.run, "ofd": ofd.run, "identity": identity.run, "seal": seal.run,
          "licence": licence.run, "storage": storage.run}


def main() -> None:
    figures: dict[str, float] = {}
    for name, run in SUITES.items():
        print(f"running {name} …", file=sys.stderr, flush=True)
        figures.update(run())
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value:>12}", file=sys.stderr)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
