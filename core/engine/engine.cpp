#include "oedit/engine.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace oedit {

struct Engine::Impl {
};

Engine::Engine() : d(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

Expected<DeviceCheck> Engine::checkDevice(const std::string &deviceName)
{
    try {
        const torch::Device device(deviceName);
        if (device.is_cuda() && !torch::cuda::is_available())
            return Status::failure("CUDA was requested but this build of libtorch has no CUDA "
                                   "or no GPU is visible; use --device cpu, or rebuild against a "
                                   "CUDA libtorch with -DCMAKE_PREFIX_PATH");
        torch::manual_seed(0);
        const auto a = torch::randn({64, 48}, torch::kFloat64);
        const auto b = torch::randn({48, 32}, torch::kFloat64);
        const auto reference = torch::matmul(a, b);
        const auto onDevice = torch::matmul(a.to(device, torch::kFloat32), b.to(device, torch::kFloat32));
        DeviceCheck check;
        check.device = device.str();
        check.maxAbsError = (onDevice.to(torch::kCPU, torch::kFloat64) - reference).abs().max().item<double>();

        const auto x = torch::randn({512, 512}, torch::TensorOptions().device(device));
        torch::matmul(x, x); // warm-up
        if (device.is_cuda())
            torch::cuda::synchronize();
        const auto start = std::chrono::steady_clock::now();
        auto y = torch::matmul(x, x);
        if (device.is_cuda())
            torch::cuda::synchronize();
        (void)y.sum().item<float>();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        check.gflops = 2.0 * 512.0 * 512.0 * 512.0 / std::max(seconds, 1e-9) / 1e9;
        return check;
    } catch (const std::exception &e) {
        return Status::failure("device check on '" + deviceName + "' failed: " + e.what());
    }
}

std::string Engine::defaultModelDirectory()
{
    namespace fs = std::filesystem;
    // An explicit override first, then the installed location, then the source
    // tree (for running from a build directory).
    std::vector<fs::path> candidates;
    if (const char *env = std::getenv("OEDIT_DEFAULT_MODEL"))
        candidates.emplace_back(env);
    candidates.emplace_back(fs::path("/usr/share/oedit-workbench/models/default"));
    candidates.emplace_back(fs::path(OEDIT_SOURCE_RESOURCES) / "models" / "default");
    for (const auto &candidate : candidates) {
        std::error_code ec;
        if (fs::exists(candidate / "config.json", ec))
            return candidate.string();
    }
    return {};
}

} // namespace oedit
