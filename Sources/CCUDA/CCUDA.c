// Intentionally empty: CCUDA only declares types for CUDADriver, which resolves every function
// at run time with dlopen/dlsym. Nothing here links against libcuda or NVRTC.
