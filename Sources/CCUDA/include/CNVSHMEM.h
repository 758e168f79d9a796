// CNVSHMEM: the nvJitLink, NVRTC LTO-IR and NVSHMEM host declarations that the NVSHMEM transport
// (issue #6) needs, written from the documented C signatures of nvJitLink 13.0 (nvJitLink.h),
// NVRTC 13.0 (nvrtc.h) and NVSHMEM 3.4.5 (host/nvshmem_api.h, host/nvshmemx_api.h,
// device_host/nvshmem_types.h, bootstrap_device_host/nvshmem_uniqueid.h). Like CCUDA.h it declares
// types and function-pointer types only: CUDADriver resolves every function with dlsym, so nothing
// here links against nvJitLink or NVSHMEM and the package builds where neither exists.
#ifndef FLASHMOE_CNVSHMEM_H
#define FLASHMOE_CNVSHMEM_H

#include <stddef.h>
#include <stdint.h>
#include "CCUDA.h"  // CUmodule, nvrtcProgram, nvrtcResult

// MARK: - NVRTC: LTO-IR of a program compiled with -dlto (NVRTC >= 12.0)

typedef nvrtcResult (*PFN_nvrtcGetLTOIRSize)(nvrtcProgram prog, size_t *LTOIRSizeRet);
typedef nvrtcResult (*PFN_nvrtcGetLTOIR)(nvrtcProgram prog, char *LTOIR);

// MARK: - nvJitLink
// libnvJitLink.so.13 exports each function twice: versioned (`__nvJitLinkCreate_13_0`, what the
// header's inline wrappers call) and plain (`nvJitLinkCreate`). CUDADriver tries the versioned name
// first. nvJitLinkVersion has only the plain name.

typedef int nvJitLinkResult;                 // enum; 0 = NVJITLINK_SUCCESS
typedef int nvJitLinkInputType;              // enum nvJitLinkInputType
typedef struct nvJitLink *nvJitLinkHandle;

static const nvJitLinkResult NVJITLINK_SUCCESS = 0;

static const nvJitLinkInputType NVJITLINK_INPUT_CUBIN = 1;
static const nvJitLinkInputType NVJITLINK_INPUT_PTX = 2;
static const nvJitLinkInputType NVJITLINK_INPUT_LTOIR = 3;
static const nvJitLinkInputType NVJITLINK_INPUT_FATBIN = 4;
static const nvJitLinkInputType NVJITLINK_INPUT_OBJECT = 5;   // host object with embedded device code
static const nvJitLinkInputType NVJITLINK_INPUT_LIBRARY = 6;  // host archive (.a) of such objects
static const nvJitLinkInputType NVJITLINK_INPUT_ANY = 10;     // nvJitLink picks from the contents

typedef nvJitLinkResult (*PFN_nvJitLinkCreate)(nvJitLinkHandle *handle, uint32_t numOptions,
                                               const char *const *options);
typedef nvJitLinkResult (*PFN_nvJitLinkDestroy)(nvJitLinkHandle *handle);
typedef nvJitLinkResult (*PFN_nvJitLinkAddData)(nvJitLinkHandle handle, nvJitLinkInputType inputType,
                                                const void *data, size_t size, const char *name);
typedef nvJitLinkResult (*PFN_nvJitLinkAddFile)(nvJitLinkHandle handle, nvJitLinkInputType inputType,
                                                const char *fileName);
typedef nvJitLinkResult (*PFN_nvJitLinkComplete)(nvJitLinkHandle handle);
typedef nvJitLinkResult (*PFN_nvJitLinkGetLinkedCubinSize)(nvJitLinkHandle handle, size_t *size);
typedef nvJitLinkResult (*PFN_nvJitLinkGetLinkedCubin)(nvJitLinkHandle handle, void *cubin);
typedef nvJitLinkResult (*PFN_nvJitLinkGetErrorLogSize)(nvJitLinkHandle handle, size_t *size);
typedef nvJitLinkResult (*PFN_nvJitLinkGetErrorLog)(nvJitLinkHandle handle, char *log);
typedef nvJitLinkResult (*PFN_nvJitLinkGetInfoLogSize)(nvJitLinkHandle handle, size_t *size);
typedef nvJitLinkResult (*PFN_nvJitLinkGetInfoLog)(nvJitLinkHandle handle, char *log);
typedef nvJitLinkResult (*PFN_nvJitLinkVersion)(unsigned int *major, unsigned int *minor);

// MARK: - NVSHMEM host API types
// The structs mirror NVSHMEM's versioned ABI structs: the fields the host must write (versions,
// pointers, ranks) are named, everything NVSHMEM keeps to itself is an opaque byte array. Sizes and
// offsets are asserted here against the numbers NVSHMEM's own headers assert (their static_asserts);
// Tests/CUDADriverTests/NVSHMEMTests.swift checks them against the real headers when present.

// nvshmemx_uniqueid_v1 (= nvshmemx_uniqueid_t): what rank 0's nvshmemx_get_uniqueid fills and every
// other rank receives (128 bytes, sent as they are).
typedef struct {
  int version;             // (1 << 16) + sizeof(nvshmemx_uniqueid_t), as NVSHMEMX_UNIQUEID_INITIALIZER
  char internal[124];      // UNIQUEID_PADDING
} FlashMoENVSHMEMUniqueID;

// nvshmemx_uniqueid_args_v1: filled by nvshmemx_set_attr_uniqueid_args.
typedef struct {
  int version;
  FlashMoENVSHMEMUniqueID *id;
  int myrank;
  int nranks;
} FlashMoENVSHMEMUniqueIDArgs;

// nvshmemx_init_args_v1.
typedef struct {
  int version;
  FlashMoENVSHMEMUniqueIDArgs uid_args;
  char content[96];        // INIT_ARGS_PADDING
} FlashMoENVSHMEMInitArgs;

// nvshmemx_init_attr_v1 (= nvshmemx_init_attr_t).
typedef struct {
  int version;
  void *mpi_comm;
  FlashMoENVSHMEMInitArgs args;
} FlashMoENVSHMEMInitAttr;

_Static_assert(sizeof(FlashMoENVSHMEMUniqueID) == 128, "nvshmemx_uniqueid_v1 is 128 bytes");
_Static_assert(sizeof(FlashMoENVSHMEMUniqueIDArgs) == 24, "nvshmemx_uniqueid_args_v1 is 24 bytes");
_Static_assert(sizeof(FlashMoENVSHMEMInitArgs) == 128, "nvshmemx_init_args_v1 is 128 bytes");
_Static_assert(sizeof(FlashMoENVSHMEMInitAttr) == 144, "nvshmemx_init_attr_v1 is 144 bytes");
_Static_assert(offsetof(FlashMoENVSHMEMInitAttr, args) == 16, "nvshmemx_init_attr_v1.args at 16");
_Static_assert(offsetof(FlashMoENVSHMEMInitArgs, uid_args) == 8, "nvshmemx_init_args_v1.uid_args at 8");

// enum flags of host/nvshmemx_api.h.
static const unsigned int NVSHMEMX_INIT_WITH_UNIQUEID = 1u << 3;
// nvshmemx_init_status_t.
static const int NVSHMEM_STATUS_NOT_INITIALIZED = 0;
static const int NVSHMEM_STATUS_IS_BOOTSTRAPPED = 1;
static const int NVSHMEM_STATUS_IS_INITIALIZED = 2;

// MARK: - NVSHMEM host function-pointer types (libnvshmem_host.so.3)
// nvshmem_init / nvshmemx_init_attr / nvshmem_finalize are static inline in the headers and call
// nvshmemi_init_thread / nvshmemi_finalize, which live in the static libnvshmem_device.a, not in
// libnvshmem_host.so.3. A process that loads NVSHMEM with dlopen uses the host-library-only entry
// points instead: nvshmemx_hostlib_init_attr / nvshmemx_hostlib_finalize, and
// nvshmemx_cumodule_init for each CUmodule whose cubin links NVSHMEM's device code.

typedef int (*PFN_nvshmemx_get_uniqueid)(FlashMoENVSHMEMUniqueID *uniqueid);
typedef int (*PFN_nvshmemx_set_attr_uniqueid_args)(int myrank, int nranks,
                                                   const FlashMoENVSHMEMUniqueID *uniqueid,
                                                   FlashMoENVSHMEMInitAttr *attr);
typedef int (*PFN_nvshmemx_hostlib_init_attr)(unsigned int flags, FlashMoENVSHMEMInitAttr *attr);
typedef void (*PFN_nvshmemx_hostlib_finalize)(void);
typedef int (*PFN_nvshmemx_init_status)(void);
typedef int (*PFN_nvshmemx_cumodule_init)(CUmodule module);
typedef int (*PFN_nvshmemx_cumodule_finalize)(CUmodule module);
typedef int (*PFN_nvshmem_my_pe)(void);
typedef int (*PFN_nvshmem_n_pes)(void);
typedef void *(*PFN_nvshmem_malloc)(size_t size);
typedef void *(*PFN_nvshmem_align)(size_t alignment, size_t size);
typedef void (*PFN_nvshmem_free)(void *ptr);
typedef void *(*PFN_nvshmem_ptr)(const void *ptr, int pe);
typedef void (*PFN_nvshmem_barrier_all)(void);
typedef void (*PFN_nvshmemx_vendor_get_version_info)(int *major, int *minor, int *patch);

#endif  // FLASHMOE_CNVSHMEM_H
