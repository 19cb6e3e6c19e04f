/**
 * What capsule authors use: the AssemblyScript guest SDK (`sdk/assemblyscript/`) and the
 * capsule compiler behind `astrid build` (`sdk/build/`). It arrives with the SDK; until then
 * this surface is empty.
 *
 * @module
 */
export {};
