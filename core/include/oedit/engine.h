// The engine facade: the one entry point the CLI and the workbench use.
//
// Value types in, value types out; no torch type appears here (libtorch's
// `slots` identifier clashes with Qt's keyword macro), so ui/ never includes
// torch. An Engine is owned and called by one thread at a time (the workbench's
// worker thread); it loads a model once and keeps per-run state separately.
// No exception escapes: failures come back as Status with a clear message.
#pragma once

#include "oedit/status.h"

#include <memory>
#include <string>
#include <vector>

namespace oedit {

struct BuildInfo {
    std::string version;        // O-Edit Workbench version
    std::string torchVersion;   // libtorch the engine was built against
    bool cudaAvailable = false; // libtorch has CUDA and a device is visible
    int cudaDeviceCount = 0;
    std::string blas;           // BLAS libtorch reports, e.g. "OpenBLAS"
};

struct DeviceCheck {
    std::string device;     // "cpu" or "cuda"
    double maxAbsError = 0; // of a small matmul against a float64 reference
    double gflops = 0;      // of one 512^3 float32 matmul, for orientation
};

class Engine {
public:
    Engine();
    ~Engine();
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;

    static BuildInfo buildInfo();

    // Runs a small computation on `device` ("cpu" or "cuda") and checks it
    // against a float64 reference: proves the tensor backend works here.
    static Expected<DeviceCheck> checkDevice(const std::string &device);

    // Where the embedded default model lives, or an empty string when it is
    // not installed next to the binary nor in the source tree.
    static std::string defaultModelDirectory();

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

} // namespace oedit
