// Throughput of MetadataStore::RecordInvocations: the engine flushes records
// in batches, so this measures records per second at a given batch size on a
// real file (WAL, synchronous=NORMAL). Target: >= 50,000 records/s at 500.
#include <benchmark/benchmark.h>

#include "common/ids.h"
#include "store/metadata_store.h"
#include "store/test_util.h"

namespace gust {
namespace {

void BM_RecordInvocations(benchmark::State& state) {
  store_testing::TempDir dir;
  auto store = OpenSqliteMetadataStore(dir / "meta.db");
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return;
  }
  const int batch_size = static_cast<int>(state.range(0));
  std::vector<InvocationRecord> batch(batch_size);
  int64_t start_ms = 1700000000000;
  for (int i = 0; i < batch_size; ++i) {
    InvocationRecord& r = batch[i];
    r.request_id = NewRequestId();
    r.function = "fn" + std::to_string(i % 20);
    r.version = "$LATEST";
    r.duration_ms = 12.3;
    r.billed_ms = 13;
    r.memory_mb = 128;
    r.max_memory_used_mb = 42;
    r.cold = i % 50 == 0;
    r.outcome = "Success";
    r.sandbox_id = "sb-" + std::to_string(i % 8);
  }
  for (auto _ : state) {
    for (InvocationRecord& r : batch) r.start_ms = start_ms++;
    Status s = (*store)->RecordInvocations(batch);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
}
BENCHMARK(BM_RecordInvocations)
    ->Arg(1)
    ->Arg(50)
    ->Arg(500)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gust

BENCHMARK_MAIN();
