#!/bin/sh
echo "coverage through bazel is not supported offline" >&2
exit 1
