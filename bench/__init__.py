"""The benchmarks behind `make bench`: each measures this project beside a peer in one run.

callback (the assignment callback), lifecycle and scale (the sandbox), suite (`make test`).
"""
