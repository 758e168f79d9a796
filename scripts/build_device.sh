#!/usr/bin/env bash
# The static binary the device machine runs (.device/flashmoe, with torch_moe.py next to it), for
# scripts/gpu_check.sh. The project's own modules are always recompiled: an incremental release
# build once kept the CLI's old objects after KernelTrace's stored properties changed in MoECUDA,
# and the binary read the struct at the old offsets (wrong numbers, then a segfault; twelfth
# session). Their objects and SwiftPM's build plan go (touching the sources was not enough); the
# dependencies' objects are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in Sources/*/; do rm -rf ".build/release/$(basename "$target").build"; done
rm -f .build/release.yaml .build/*/release/description.json
swift build -c release --static-swift-stdlib --product flashmoe
mkdir -p .device
cp .build/release/flashmoe .device/flashmoe
strip .device/flashmoe
BASELINE=${BASELINE:-../shared/baselines/torch_moe.py}
if [ -f "$BASELINE" ]; then cp "$BASELINE" .device/torch_moe.py; fi
ls -la .device
