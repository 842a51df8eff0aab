// libFuzzer target: WAV crash repair (wav::plan_repair), the code the daemon
// runs on every recording it finds at start.
//
// For any bytes: plan_repair must stay inside them and return a known status;
// when it repairs, applying the plan (truncate, pad, patch the RIFF, data and
// fact sizes, as repair_file does) must give a file whose data chunk lies
// inside it, and planning again must change nothing (idempotence).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wav.hpp"

using namespace mediacore;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_wav_repair: %s\n", what);
  std::abort();
}

void put32(std::vector<std::uint8_t>& b, std::uint64_t off, std::uint32_t v) {
  if (off + 4 > b.size()) fail("patch outside the file");
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wav::RepairPlan plan = wav::plan_repair(MemorySource(data, size));
  if (plan.status != wav::kRepairOk) {
    if (plan.status != wav::kNotWav && plan.status != wav::kNoFormat && plan.status != wav::kNoData)
      fail("unknown status");
    return 0;
  }
  if (plan.old_size != size) fail("old_size");
  if (plan.block_align == 0) fail("block_align 0 accepted");
  if (plan.data_offset < 20 || plan.data_offset > size) fail("data offset outside");
  const std::uint64_t data_end = plan.data_offset + plan.data_bytes;
  if (data_end > plan.new_size) fail("data beyond the new end");
  if (plan.new_size > size && !(plan.add_pad_byte && plan.new_size == data_end + 1)) fail("grew without a pad");
  if (!plan.changed) return 0;

  // Apply it the way repair_file does, in memory.
  std::vector<std::uint8_t> file(data, data + size);
  if (plan.cut_to_data) {
    file.resize(data_end);
    file.resize(plan.new_size, 0);
  } else if (plan.new_size != size) {
    fail("size changed without cutting to the data");
  }
  put32(file, 4, plan.riff_size);
  put32(file, plan.data_offset - 4, static_cast<std::uint32_t>(plan.data_bytes));
  if (plan.fact_offset != 0) put32(file, plan.fact_offset, plan.fact_samples);

  const wav::RepairPlan again = wav::plan_repair(MemorySource(file.data(), file.size()));
  if (again.status != wav::kRepairOk) fail("repaired file no longer parses");
  if (again.changed) fail("repair is not idempotent");
  if (again.data_bytes != plan.data_bytes || again.data_offset != plan.data_offset) fail("data moved");
  return 0;
}
