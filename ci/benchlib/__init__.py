"""ci/bench's package: the RUST engine's layouts side by side with MariaDB's engines.

    config     what is compared: paths, modes, server settings, engines, workloads, pairs
    util       errors, progress lines, number formatting, /proc readings
    build      which ha_rust.so is measured (its source, a private copy)
    dataset    the deterministic data set and the workloads' expected results
    server     the scratch server and a time-limited client that notices crashes
    workloads  the benchmark proper: rounds, UPDATE, sysbench, raw.json
    report     ratios, results.json, benchmarks.md, charts, the printed summary
    profile    ci/bench --profile (perf, callgrind)
    cli        the command line (ci/bench is its entry point)

Python standard library only. Unit tests of the pure parts: test_*.py, run by
`python3 -m unittest discover -s ci/benchlib -t ci` (ci/test does).
"""
