#!/usr/bin/env bash
# Example manifests that say they are tools/seam-inject's output still are: a file under k8s/
# whose header comment names the command ("#   tools/seam-inject FLAGS... <INPUT", continued
# with a trailing "\") must equal, as YAML objects (comments and layout aside), what
# seam-inject makes of INPUT today; INPUT is relative to the file's folder.
set -u
source "$(dirname "$0")/lib.sh"
inject=$top/tools/seam-inject

# command_of FILE: the seam-inject command in FILE's leading comments, on one line ("" if none).
command_of() {
    awk '!/^#/ {exit}
         { sub(/^# */, "") }
         /^tools\/seam-inject / { on = 1 }
         on { cont = sub(/ *\\$/, ""); line = line (line == "" ? "" : " ") $0; if (!cont) exit }
         END { print line }' "$1"
}

found=0
while IFS= read -r file; do
    cmd=$(command_of "$file")
    [ -n "$cmd" ] || continue
    found=$((found + 1))
    rel=${file#"$top"/}
    read -r -a words <<<"${cmd#tools/seam-inject }"
    input=${words[${#words[@]} - 1]}
    case "$input" in
    "<"?*) input=${input#<} ;;
    *) bad "$rel: the command reads its input with <FILE" "$cmd"; continue ;;
    esac
    unset 'words[${#words[@]}-1]'
    dir=$(dirname "$file")
    if ! "$inject" "${words[@]}" <"$dir/$input" >"$work/out.yaml" 2>"$work/err"; then
        bad "$rel: seam-inject ${words[*]} <$input runs" "$(cat "$work/err")"
        continue
    fi
    if python3 - "$work/out.yaml" "$file" >"$work/diff" 2>&1 <<'PY'; then
import json, sys, yaml
want, got = ([d for d in yaml.safe_load_all(open(f)) if d is not None] for f in sys.argv[1:3])
if want != got:
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            print(f"document {i + 1} differs: seam-inject makes {json.dumps(w)[:300]}...")
            break
    else:
        print(f"{len(want)} documents from seam-inject, {len(got)} in the file")
    sys.exit(1)
PY
        ok "$rel is seam-inject ${words[*]} <$input"
    else
        bad "$rel is seam-inject ${words[*]} <$input" "$(cat "$work/diff")"
    fi
done < <(find "$top/k8s" -name '*.yaml' | sort)
[ "$found" -gt 0 ] && ok "found $found injected example files" || bad "found injected example files"
summary inject-examples
