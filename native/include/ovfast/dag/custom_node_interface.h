/*
 * ovfast — the custom-node C ABI of OpenVINO Model Server (OVMS) DAG pipelines.
 *
 * A custom node is a shared library exporting the six functions declared below. The server loads it with
 * dlopen(RTLD_LAZY | RTLD_LOCAL) and looks all six up by name; a library missing one is not loaded. Libraries
 * written against OVMS's src/custom_node_interface.h load unchanged: the enum values, struct field order and
 * types, and the function signatures here are the same, so the binary layout is identical.
 *
 * Plain C (usable from C and C++ node libraries); no ovfast header is needed to build a node.
 *
 * Ownership, in one place:
 *  - Every pointer a library returns to the server (the info/outputs arrays, each dims array, each output's
 *    data) is allocated by the library and handed back to that same library's release() when the server is
 *    done with it. The server never frees library memory itself, and never passes one library's pointer to
 *    another library's release().
 *  - Names (CustomNodeTensor.name, CustomNodeTensorInfo.name) are copied by the server and never released:
 *    a library returns pointers to strings that outlive the call (string literals or manager-owned storage).
 *  - Inputs to execute() (their data and dims) belong to the server and are read-only for the library; they
 *    stay valid only for the duration of the call.
 *  - When execute() returns non-zero the library has already freed everything it allocated in that call;
 *    the server reads nothing from *outputs.
 *  - The server releases each output's dims right after reading it, the outputs array after reading all of
 *    them, and each output's data when the last tensor using it (downstream nodes, the response) is gone;
 *    release() may therefore be called from any server thread, after execute() has returned.
 *
 * Return values: 0 is success; anything else is a failure, reported as a request error (execute) or a
 * pipeline that does not load (initialize, getInputsInfo, getOutputsInfo).
 */
#ifndef OVFAST_DAG_CUSTOM_NODE_INTERFACE_H
#define OVFAST_DAG_CUSTOM_NODE_INTERFACE_H

#include <stdint.h>

#if defined(_WIN32)
#define OVFAST_CUSTOM_NODE_API __declspec(dllexport)
#else
#define OVFAST_CUSTOM_NODE_API __attribute__((visibility("default")))
#endif

/* Element type of a tensor. The numeric values are part of the ABI (OVMS order); do not reorder. */
typedef enum {
    UNSPECIFIED, /* 0: not valid for an execute() output */
    FP32,        /* 1 */
    FP16,        /* 2 */
    U8,          /* 3 */
    I8,          /* 4 */
    I16,         /* 5 */
    U16,         /* 6 */
    I32,         /* 7 */
    FP64,        /* 8 */
    I64          /* 9 */
} CustomNodeTensorPrecision;

/*
 * A dense row-major tensor crossing the ABI. dataBytes must equal product(dims) * element size of precision;
 * a dimension may be 0 (an empty tensor, data may then be any pointer but is still released if non-null).
 */
struct CustomNodeTensor {
    const char* name;                    /* input or output name, NUL terminated */
    uint8_t* data;                       /* element bytes */
    uint64_t dataBytes;                  /* size of data in bytes */
    uint64_t* dims;                      /* dimsCount sizes, outermost first */
    uint64_t dimsCount;                  /* rank */
    CustomNodeTensorPrecision precision; /* element type */
};

/*
 * Metadata of one declared input or output (getInputsInfo / getOutputsInfo). A dimension of 0 means
 * "any size" (dynamic); the server checks connected nodes and requests against the rest.
 */
struct CustomNodeTensorInfo {
    const char* name;
    uint64_t* dims;
    uint64_t dimsCount;
    CustomNodeTensorPrecision precision;
};

/* One entry of the node's "params" object from config.json: both strings NUL terminated, owned by the server. */
struct CustomNodeParam {
    const char *key, *value;
};

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Called once per custom node of a pipeline definition when it is loaded, with that node's params. A library
 * that keeps state between calls (buffer pools, parsed params) creates it here and stores it in
 * *customNodeLibraryInternalManager; the same pointer is passed to every other call for that node. A library
 * without state sets it to NULL and returns 0. Non-zero: the pipeline does not load.
 */
OVFAST_CUSTOM_NODE_API int initialize(void** customNodeLibraryInternalManager, const struct CustomNodeParam* params,
                                      int paramsCount);

/*
 * Called once when the node's pipeline definition is removed or replaced and no request uses it any longer;
 * frees what initialize created. A non-zero return is logged only.
 */
OVFAST_CUSTOM_NODE_API int deinitialize(void* customNodeLibraryInternalManager);

/*
 * Runs the node on one set of inputs. On success (0) the library sets *outputs to an array of *outputsCount
 * tensors it allocated, each with library-allocated dims and data (see Ownership above); outputs whose
 * precision is UNSPECIFIED, whose data is NULL or whose dataBytes disagree with dims, or which have no name,
 * fail the request, as does a missing declared output. May be called concurrently from several threads with
 * the same manager.
 */
OVFAST_CUSTOM_NODE_API int execute(const struct CustomNodeTensor* inputs, int inputsCount,
                                   struct CustomNodeTensor** outputs, int* outputsCount,
                                   const struct CustomNodeParam* params, int paramsCount,
                                   void* customNodeLibraryInternalManager);

/*
 * Declares the node's inputs: *info is set to a library-allocated array of *infoCount entries, each with a
 * library-allocated dims array. The server copies them, then releases each dims and the array.
 * Called at pipeline validation; the result may depend on params.
 */
OVFAST_CUSTOM_NODE_API int getInputsInfo(struct CustomNodeTensorInfo** info, int* infoCount,
                                         const struct CustomNodeParam* params, int paramsCount,
                                         void* customNodeLibraryInternalManager);

/* Declares the node's outputs, with the same allocation rules as getInputsInfo. */
OVFAST_CUSTOM_NODE_API int getOutputsInfo(struct CustomNodeTensorInfo** info, int* infoCount,
                                          const struct CustomNodeParam* params, int paramsCount,
                                          void* customNodeLibraryInternalManager);

/* Frees one pointer this library returned earlier (an array, a dims array or output data). */
OVFAST_CUSTOM_NODE_API int release(void* ptr, void* customNodeLibraryInternalManager);

#ifdef __cplusplus
}
#endif

#endif /* OVFAST_DAG_CUSTOM_NODE_INTERFACE_H */
