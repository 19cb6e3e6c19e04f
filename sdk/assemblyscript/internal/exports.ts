/**
 * What every compiled capsule exports besides its handlers, and the modules the compiler's
 * generated code needs loaded. The capsule compiler adds this file as an entry.
 */
export { astrid_alloc } from "./memory";
import "./entry";
import "./env";
