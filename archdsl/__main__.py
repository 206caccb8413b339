import os
import sys

from .cli import main

if all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
    # a torchrun worker: leave through exit_worker, never through the interpreter's shutdown
    import traceback

    from .train.distributed import exit_worker

    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors and --help
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - shown as the interpreter would, then the exit
        traceback.print_exc()
        code = 1
    exit_worker(code)
sys.exit(main())
