#!/usr/bin/env bash
# Minimises one target's committed corpus, fuzz/corpus-min/<target>/ (campaign.sh runs it
# after each target): the inputs of seeds/, corpus-min/ and the working corpus/ that
# add an edge (-merge=1 -use_counters=0), minus the seeds themselves (committed
# separately), then, if over FUZZ_CORPUS_KIB [512] KiB of data, only the smallest
# inputs that fit. Appends target, files, KiB, edges of all inputs and edges the
# committed seeds + corpus-min still reach to $FUZZ_LOG/corpus-min.tsv.
set -euo pipefail
cd "$(dirname "$0")"
t=$1
BIN=target/x86_64-unknown-linux-gnu/release
CAP=${FUZZ_CORPUS_KIB:-512}
LOG=${FUZZ_LOG:-logs}
mkdir -p "$LOG" "corpus/$t" "corpus-min/$t" "seeds/$t"
opts=(-len_control=0 -timeout=10 -rss_limit_mb=2048)
tmp=$(mktemp -d)
nice -n 19 "$BIN/$t" -merge=1 -use_counters=0 "${opts[@]}" \
  "$tmp" "seeds/$t" "corpus-min/$t" "corpus/$t" >"$LOG/$t.merge.log" 2>&1
for s in "seeds/$t"/*; do
  [ -f "$s" ] && rm -f "$tmp/$(sha1sum "$s" | cut -d' ' -f1)"
done
total=0
while read -r size name; do
  if [ $((total + size)) -gt $((CAP * 1024)) ]; then
    rm -f "$tmp/$name"
  else
    total=$((total + size))
  fi
done < <(find "$tmp" -type f -printf '%s %f\n' | sort -n)
rm -rf "corpus-min/$t"
mv "$tmp" "corpus-min/$t"
chmod 755 "corpus-min/$t"
all=$(sed -nE 's/.*DONE +cov: ([0-9]+).*/\1/p' "$LOG/$t.merge.log" | tail -1)
kept=$(nice -n 19 "$BIN/$t" -runs=0 "${opts[@]}" "seeds/$t" "corpus-min/$t" 2>&1 |
  sed -nE 's/.*(INITED|DONE) +cov: ([0-9]+).*/\2/p' | tail -1)
[ -f "$LOG/corpus-min.tsv" ] ||
  printf 'target\tfiles\tkib\tedges_all_inputs\tedges_committed\n' >"$LOG/corpus-min.tsv"
printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$(find "corpus-min/$t" -type f | wc -l)" $((total / 1024)) \
  "${all:-?}" "${kept:-?}" | tee -a "$LOG/corpus-min.tsv"
