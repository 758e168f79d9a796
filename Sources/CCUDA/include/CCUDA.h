// CCUDA: the few CUDA driver API and NVRTC declarations that FlashMoE uses, written from the
// documented C signatures. It declares types and function-pointer types only: CUDADriver looks
// every function up at run time (dlopen + dlsym), so nothing links against libcuda or NVRTC and
// the package builds and runs where neither exists.
#ifndef FLASHMOE_CCUDA_H
#define FLASHMOE_CCUDA_H

#include <stddef.h>

// MARK: - Driver API types

typedef int CUresult;                     // enum cudaError_enum; 0 = CUDA_SUCCESS
typedef int CUdevice;                     // device ordinal handle
typedef unsigned long long CUdeviceptr;   // device address (64-bit)
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef int CUdevice_attribute;
typedef int CUfunction_attribute;

static const CUresult CUDA_SUCCESS = 0;
static const CUresult CUDA_ERROR_INVALID_VALUE = 1;
static const CUresult CUDA_ERROR_NO_DEVICE = 100;
static const CUresult CUDA_ERROR_NOT_READY = 600;
static const CUresult CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704;

// CUdevice_attribute values (by number, as documented).
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH = 95;
static const CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

// CUfunction_attribute values.
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES = 2;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_PTX_VERSION = 5;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_BINARY_VERSION = 6;
static const CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

// Stream and event creation flags.
static const unsigned int CU_STREAM_DEFAULT = 0x0;
static const unsigned int CU_STREAM_NON_BLOCKING = 0x1;
static const unsigned int CU_EVENT_DEFAULT = 0x0;
static const unsigned int CU_EVENT_BLOCKING_SYNC = 0x1;
static const unsigned int CU_EVENT_DISABLE_TIMING = 0x2;

// MARK: - Driver API function-pointer types (resolved with dlsym under the name in the comment)

typedef CUresult (*PFN_cuInit)(unsigned int flags);
typedef CUresult (*PFN_cuDriverGetVersion)(int *driverVersion);
typedef CUresult (*PFN_cuGetErrorName)(CUresult error, const char **pStr);
typedef CUresult (*PFN_cuGetErrorString)(CUresult error, const char **pStr);

typedef CUresult (*PFN_cuDeviceGetCount)(int *count);
typedef CUresult (*PFN_cuDeviceGet)(CUdevice *device, int ordinal);
typedef CUresult (*PFN_cuDeviceGetName)(char *name, int len, CUdevice dev);
typedef CUresult (*PFN_cuDeviceGetAttribute)(int *pi, CUdevice_attribute attrib, CUdevice dev);
typedef CUresult (*PFN_cuDeviceTotalMem)(size_t *bytes, CUdevice dev);                  // cuDeviceTotalMem_v2
typedef CUresult (*PFN_cuDeviceCanAccessPeer)(int *canAccessPeer, CUdevice dev, CUdevice peerDev);

typedef CUresult (*PFN_cuDevicePrimaryCtxRetain)(CUcontext *pctx, CUdevice dev);
typedef CUresult (*PFN_cuDevicePrimaryCtxRelease)(CUdevice dev);                        // cuDevicePrimaryCtxRelease_v2
typedef CUresult (*PFN_cuCtxSetCurrent)(CUcontext ctx);
typedef CUresult (*PFN_cuCtxSynchronize)(void);
typedef CUresult (*PFN_cuCtxEnablePeerAccess)(CUcontext peerContext, unsigned int flags);
typedef CUresult (*PFN_cuMemGetInfo)(size_t *free, size_t *total);                      // cuMemGetInfo_v2

typedef CUresult (*PFN_cuStreamCreate)(CUstream *phStream, unsigned int flags);
typedef CUresult (*PFN_cuStreamDestroy)(CUstream hStream);                              // cuStreamDestroy_v2
typedef CUresult (*PFN_cuStreamSynchronize)(CUstream hStream);
typedef CUresult (*PFN_cuStreamQuery)(CUstream hStream);

typedef CUresult (*PFN_cuEventCreate)(CUevent *phEvent, unsigned int flags);
typedef CUresult (*PFN_cuEventDestroy)(CUevent hEvent);                                 // cuEventDestroy_v2
typedef CUresult (*PFN_cuEventRecord)(CUevent hEvent, CUstream hStream);
typedef CUresult (*PFN_cuEventSynchronize)(CUevent hEvent);
typedef CUresult (*PFN_cuEventQuery)(CUevent hEvent);
typedef CUresult (*PFN_cuEventElapsedTime)(float *pMilliseconds, CUevent hStart, CUevent hEnd); // _v2 when present

typedef CUresult (*PFN_cuMemAlloc)(CUdeviceptr *dptr, size_t bytesize);                 // cuMemAlloc_v2
typedef CUresult (*PFN_cuMemFree)(CUdeviceptr dptr);                                    // cuMemFree_v2
typedef CUresult (*PFN_cuMemcpyHtoD)(CUdeviceptr dstDevice, const void *srcHost, size_t byteCount);      // _v2
typedef CUresult (*PFN_cuMemcpyDtoH)(void *dstHost, CUdeviceptr srcDevice, size_t byteCount);            // _v2
typedef CUresult (*PFN_cuMemcpyDtoD)(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t byteCount);    // _v2
typedef CUresult (*PFN_cuMemcpyHtoDAsync)(CUdeviceptr dstDevice, const void *srcHost, size_t byteCount, CUstream hStream);   // _v2
typedef CUresult (*PFN_cuMemcpyDtoHAsync)(void *dstHost, CUdeviceptr srcDevice, size_t byteCount, CUstream hStream);         // _v2
typedef CUresult (*PFN_cuMemcpyDtoDAsync)(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t byteCount, CUstream hStream); // _v2
typedef CUresult (*PFN_cuMemsetD8)(CUdeviceptr dstDevice, unsigned char uc, size_t n);                   // _v2
typedef CUresult (*PFN_cuMemsetD32)(CUdeviceptr dstDevice, unsigned int ui, size_t n);                   // _v2
typedef CUresult (*PFN_cuMemsetD8Async)(CUdeviceptr dstDevice, unsigned char uc, size_t n, CUstream hStream);
typedef CUresult (*PFN_cuMemsetD32Async)(CUdeviceptr dstDevice, unsigned int ui, size_t n, CUstream hStream);

typedef CUresult (*PFN_cuModuleLoadData)(CUmodule *module, const void *image);
typedef CUresult (*PFN_cuModuleUnload)(CUmodule hmod);
typedef CUresult (*PFN_cuModuleGetFunction)(CUfunction *hfunc, CUmodule hmod, const char *name);
typedef CUresult (*PFN_cuModuleGetGlobal)(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name);
typedef CUresult (*PFN_cuFuncGetAttribute)(int *pi, CUfunction_attribute attrib, CUfunction hfunc);
typedef CUresult (*PFN_cuFuncSetAttribute)(CUfunction hfunc, CUfunction_attribute attrib, int value);
typedef CUresult (*PFN_cuFuncGetParamInfo)(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize); // CUDA >= 12.4
typedef CUresult (*PFN_cuFuncGetParamCount)(CUfunction func, size_t *paramCount);                                        // newer drivers

typedef CUresult (*PFN_cuLaunchKernel)(CUfunction f,
                                       unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                       unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                       unsigned int sharedMemBytes, CUstream hStream,
                                       void **kernelParams, void **extra);
typedef CUresult (*PFN_cuLaunchCooperativeKernel)(CUfunction f,
                                                  unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                                  unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                                  unsigned int sharedMemBytes, CUstream hStream,
                                                  void **kernelParams);
typedef CUresult (*PFN_cuOccupancyMaxActiveBlocksPerMultiprocessor)(int *numBlocks, CUfunction func,
                                                                    int blockSize, size_t dynamicSMemSize);
// cuTensorMapEncodeTiled (CUDA >= 12.0): fills a 128-byte, 64-byte-aligned CUtensorMap. The
// enums are passed as their int values (CUtensorMapDataType, CUtensorMapInterleave,
// CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill).
typedef CUresult (*PFN_cuTensorMapEncodeTiled)(void *tensorMap, int tensorDataType, unsigned int tensorRank,
                                               void *globalAddress, const unsigned long long *globalDim,
                                               const unsigned long long *globalStrides, const unsigned int *boxDim,
                                               const unsigned int *elementStrides, int interleave, int swizzle,
                                               int l2Promotion, int oobFill);

// MARK: - NVRTC types and function-pointer types

typedef int nvrtcResult;                   // 0 = NVRTC_SUCCESS
typedef struct _nvrtcProgram *nvrtcProgram;

static const nvrtcResult NVRTC_SUCCESS = 0;

typedef const char *(*PFN_nvrtcGetErrorString)(nvrtcResult result);
typedef nvrtcResult (*PFN_nvrtcVersion)(int *major, int *minor);
typedef nvrtcResult (*PFN_nvrtcGetNumSupportedArchs)(int *numArchs);
typedef nvrtcResult (*PFN_nvrtcGetSupportedArchs)(int *supportedArchs);
typedef nvrtcResult (*PFN_nvrtcCreateProgram)(nvrtcProgram *prog, const char *src, const char *name,
                                              int numHeaders, const char *const *headers,
                                              const char *const *includeNames);
typedef nvrtcResult (*PFN_nvrtcDestroyProgram)(nvrtcProgram *prog);
typedef nvrtcResult (*PFN_nvrtcCompileProgram)(nvrtcProgram prog, int numOptions, const char *const *options);
typedef nvrtcResult (*PFN_nvrtcGetProgramLogSize)(nvrtcProgram prog, size_t *logSizeRet);
typedef nvrtcResult (*PFN_nvrtcGetProgramLog)(nvrtcProgram prog, char *log);
typedef nvrtcResult (*PFN_nvrtcGetPTXSize)(nvrtcProgram prog, size_t *ptxSizeRet);
typedef nvrtcResult (*PFN_nvrtcGetPTX)(nvrtcProgram prog, char *ptx);
typedef nvrtcResult (*PFN_nvrtcGetCUBINSize)(nvrtcProgram prog, size_t *cubinSizeRet);
typedef nvrtcResult (*PFN_nvrtcGetCUBIN)(nvrtcProgram prog, char *cubin);
typedef nvrtcResult (*PFN_nvrtcAddNameExpression)(nvrtcProgram prog, const char *nameExpression);
typedef nvrtcResult (*PFN_nvrtcGetLoweredName)(nvrtcProgram prog, const char *nameExpression, const char **loweredName);

// MARK: - dladdr (glibc declares it only under _GNU_SOURCE; looked up with dlsym like the rest)

typedef struct {
  const char *dli_fname;  // path of the shared object containing the address
  void *dli_fbase;
  const char *dli_sname;
  void *dli_saddr;
} FlashMoEDlInfo;         // layout of glibc's Dl_info
typedef int (*PFN_dladdr)(const void *addr, FlashMoEDlInfo *info);

#endif  // FLASHMOE_CCUDA_H
