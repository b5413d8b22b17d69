#include "oedit/engine.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <fstream>
#include <string>

namespace oedit {

namespace {
// Which BLAS the process actually loaded. Debian's libtorch calls whatever
// libblas.so.3 the alternatives system points at, so look at the mapped
// libraries rather than at how libtorch was configured.
std::string loadedBlas()
{
    std::ifstream maps("/proc/self/maps");
    std::string line;
    bool reference = false;
    while (std::getline(maps, line)) {
        if (line.find("openblas") != std::string::npos)
            return "OpenBLAS";
        if (line.find("libmkl") != std::string::npos)
            return "MKL";
        if (line.find("blis") != std::string::npos)
            return "BLIS";
        if (line.find("/libblas.so") != std::string::npos)
            reference = true;
    }
    return reference ? "reference BLAS (slow: install libopenblas0-pthread)" : "built in";
}
} // namespace

BuildInfo Engine::buildInfo()
{
    BuildInfo info;
    info.version = OEDIT_VERSION;
    info.torchVersion = TORCH_VERSION;
    info.cudaAvailable = torch::cuda::is_available();
    info.cudaDeviceCount = info.cudaAvailable ? static_cast<int>(torch::cuda::device_count()) : 0;
    info.blas = loadedBlas();
    return info;
}

} // namespace oedit
