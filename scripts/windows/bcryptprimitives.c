/*
 * A stand-in bcryptprimitives.dll for running Rust test binaries under
 * Wine 8, which lacks ProcessPrng: Rust's std (1.78 and later) imports it
 * from bcryptprimitives.dll for random numbers (HashMap keys). This DLL
 * exports ProcessPrng on top of RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Built by scripts/test-windows with
 * MinGW and placed beside the test executables; never shipped, and not
 * needed on real Windows 10 and later, where the real DLL exports it.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
