// Fuzzes the safetensors reader (core/model/safetensors.*): an input is a whole
// .safetensors file. The reader must either reject it with CheckpointError or
// give tensors whose byte size matches their header entry; anything else
// (another exception, a crash, an allocation over libFuzzer's limit) is a bug.
#include "fuzz_util.h"

#include "model/safetensors.h"

#include <torch/types.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const oedit::fuzz::ScratchDir scratch;
    const std::string path = scratch.write("model.safetensors", std::string(reinterpret_cast<const char *>(data), size));
    try {
        const oedit::model::SafetensorsFile file(path);
        for (const std::string &name : file.names()) {
            const oedit::model::TensorInfo &info = file.info(name);
            try {
                const torch::Tensor tensor = file.tensor(name);
                if (uint64_t(tensor.nbytes()) != info.byteSize() || tensor.dim() != int64_t(info.shape.size()))
                    oedit::fuzz::fail();
            } catch (const oedit::model::CheckpointError &) {
                // U16/U32/U64/F8 tensors and invalid BOOL bytes are refused one by one.
            }
        }
    } catch (const oedit::model::CheckpointError &) {
    }
    return 0;
}
