"""A small real app for the demo: reads its YAML settings, greets, shows what it ran on."""

import json
import platform
import sys
from pathlib import Path

import yaml

settings = yaml.safe_load((Path(__file__).parent / "settings.yaml").read_text())
names = sys.argv[1:] or settings["names"]
for name in names:
    print(settings["greeting"].format(name=name))
print(json.dumps({
    "python": platform.python_version(),
    "libyaml": yaml.__with_libyaml__,
    "names": len(names),
}, sort_keys=True))
