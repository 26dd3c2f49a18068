#!/usr/bin/env bash
# Makes the font the receipt image is drawn with: Noto Sans CJK SC Regular (SIL OFL 1.1, from
# Debian's fonts-noto-cjk) cut down to printable ASCII and the 7,445 characters of GB 2312,
# which covers the names, places and labels a receipt shows. The result is committed
# (server/assets/fonts/); run this only to change it. Needs fonts-noto-cjk and fonttools.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

source_font=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
[ -f "$source_font" ] || apt_install fonts-noto-cjk
command -v pyftsubset >/dev/null || die "missing: pyftsubset (pip install fonttools)"

out=server/assets/fonts
chars=$(mktemp)
trap 'rm -f "$chars"' EXIT
python3 - "$chars" <<'PY'
import sys
chars = {chr(c) for c in range(0x20, 0x7F)}
# GB 2312 in EUC-CN: rows 0xA1-0xF7, cells 0xA1-0xFE; unassigned code points do not decode.
for row in range(0xA1, 0xF8):
    for cell in range(0xA1, 0xFF):
        try:
            chars.add(bytes([row, cell]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
open(sys.argv[1], "w", encoding="utf-8").write("".join(sorted(chars)))
print(f"{len(chars)} characters", file=sys.stderr)
PY
# Font number 2 of the collection is the Simplified Chinese (SC) face.
pyftsubset "$source_font" --font-number=2 --text-file="$chars" \
  --layout-features='' --no-hinting --desubroutinize --drop-tables+=GSUB,GPOS,GDEF,BASE,VORG \
  --name-IDs='*' --output-file="$out/NotoSansSC-Regular-GB2312.otf"
# The licence: the font's own copyright notice, then the OFL text from Debian's copyright file
# (the stand-alone "License: SIL-1.1" paragraph, its continuation lines unindented).
python3 - "$source_font" "$out/LICENSE-OFL.txt" <<'PY'
import sys
from fontTools.ttLib import TTCollection
notice = TTCollection(sys.argv[1]).fonts[2]["name"].getDebugName(0)
lines = open("/usr/share/doc/fonts-noto-cjk/copyright", encoding="utf-8").read().split("\n")
start = max(i for i, l in enumerate(lines) if l == "License: SIL-1.1") + 1
text = []
for line in lines[start:]:
    if not line.startswith(" "):
        break
    text.append("" if line.strip() == "." else line[1:])
header = ("Noto Sans CJK SC Regular, subset to ASCII and GB 2312 by scripts/subset-receipt-font.sh.\n"
          f"{notice}\n\n")
open(sys.argv[2], "w", encoding="utf-8").write(header + "\n".join(text) + "\n")
PY
ls -l "$out"
