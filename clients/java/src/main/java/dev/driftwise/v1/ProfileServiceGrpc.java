package dev.driftwise.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * ProfileService shows and deletes what Driftwise knows about a user.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: driftwise/v1/profile_service.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class ProfileServiceGrpc {

  private ProfileServiceGrpc() {}

  public static final String SERVICE_NAME = "driftwise.v1.ProfileService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.GetProfileRequest,
      dev.driftwise.v1.GetProfileResponse> getGetProfileMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetProfile",
      requestType = dev.driftwise.v1.GetProfileRequest.class,
      responseType = dev.driftwise.v1.GetProfileResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.GetProfileRequest,
      dev.driftwise.v1.GetProfileResponse> getGetProfileMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.GetProfileRequest, dev.driftwise.v1.GetProfileResponse> getGetProfileMethod;
    if ((getGetProfileMethod = ProfileServiceGrpc.getGetProfileMethod) == null) {
      synchronized (ProfileServiceGrpc.class) {
        if ((getGetProfileMethod = ProfileServiceGrpc.getGetProfileMethod) == null) {
          ProfileServiceGrpc.getGetProfileMethod = getGetProfileMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.GetProfileRequest, dev.driftwise.v1.GetProfileResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetProfile"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.GetProfileRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.GetProfileResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ProfileServiceMethodDescriptorSupplier("GetProfile"))
              .build();
        }
      }
    }
    return getGetProfileMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.WatchProfileRequest,
      dev.driftwise.v1.WatchProfileResponse> getWatchProfileMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "WatchProfile",
      requestType = dev.driftwise.v1.WatchProfileRequest.class,
      responseType = dev.driftwise.v1.WatchProfileResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.WatchProfileRequest,
      dev.driftwise.v1.WatchProfileResponse> getWatchProfileMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.WatchProfileRequest, dev.driftwise.v1.WatchProfileResponse> getWatchProfileMethod;
    if ((getWatchProfileMethod = ProfileServiceGrpc.getWatchProfileMethod) == null) {
      synchronized (ProfileServiceGrpc.class) {
        if ((getWatchProfileMethod = ProfileServiceGrpc.getWatchProfileMethod) == null) {
          ProfileServiceGrpc.getWatchProfileMethod = getWatchProfileMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.WatchProfileRequest, dev.driftwise.v1.WatchProfileResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "WatchProfile"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.WatchProfileRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.WatchProfileResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ProfileServiceMethodDescriptorSupplier("WatchProfile"))
              .build();
        }
      }
    }
    return getWatchProfileMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.DeleteUserDataRequest,
      dev.driftwise.v1.DeleteUserDataResponse> getDeleteUserDataMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteUserData",
      requestType = dev.driftwise.v1.DeleteUserDataRequest.class,
      responseType = dev.driftwise.v1.DeleteUserDataResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.DeleteUserDataRequest,
      dev.driftwise.v1.DeleteUserDataResponse> getDeleteUserDataMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.DeleteUserDataRequest, dev.driftwise.v1.DeleteUserDataResponse> getDeleteUserDataMethod;
    if ((getDeleteUserDataMethod = ProfileServiceGrpc.getDeleteUserDataMethod) == null) {
      synchronized (ProfileServiceGrpc.class) {
        if ((getDeleteUserDataMethod = ProfileServiceGrpc.getDeleteUserDataMethod) == null) {
          ProfileServiceGrpc.getDeleteUserDataMethod = getDeleteUserDataMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.DeleteUserDataRequest, dev.driftwise.v1.DeleteUserDataResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteUserData"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.DeleteUserDataRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.DeleteUserDataResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ProfileServiceMethodDescriptorSupplier("DeleteUserData"))
              .build();
        }
      }
    }
    return getDeleteUserDataMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ProfileServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ProfileServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ProfileServiceStub>() {
        @java.lang.Override
        public ProfileServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ProfileServiceStub(channel, callOptions);
        }
      };
    return ProfileServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ProfileServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ProfileServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ProfileServiceBlockingStub>() {
        @java.lang.Override
        public ProfileServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ProfileServiceBlockingStub(channel, callOptions);
        }
      };
    return ProfileServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ProfileServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ProfileServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ProfileServiceFutureStub>() {
        @java.lang.Override
        public ProfileServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ProfileServiceFutureStub(channel, callOptions);
        }
      };
    return ProfileServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * ProfileService shows and deletes what Driftwise knows about a user.
   * </pre>
   */
  public static abstract class ProfileServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Returns the user's layered interests; NOT_FOUND if the user has no events.
     * </pre>
     */
    public void getProfile(dev.driftwise.v1.GetProfileRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.GetProfileResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetProfileMethod(), responseObserver);
    }

    /**
     * <pre>
     * Streams the user's profile now (if it has events) and each time it changes. A reader slower
     * than the changes gets the newest profile and skips the versions in between. Ends with
     * NOT_FOUND when the user's data is deleted.
     * </pre>
     */
    public void watchProfile(dev.driftwise.v1.WatchProfileRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.WatchProfileResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getWatchProfileMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes the user's events, profile and interest vectors everywhere (right to be forgotten).
     * </pre>
     */
    public void deleteUserData(dev.driftwise.v1.DeleteUserDataRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.DeleteUserDataResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteUserDataMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getGetProfileMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.GetProfileRequest,
                dev.driftwise.v1.GetProfileResponse>(
                  this, METHODID_GET_PROFILE)))
          .addMethod(
            getWatchProfileMethod(),
            io.grpc.stub.ServerCalls.asyncServerStreamingCall(
              new MethodHandlers<
                dev.driftwise.v1.WatchProfileRequest,
                dev.driftwise.v1.WatchProfileResponse>(
                  this, METHODID_WATCH_PROFILE)))
          .addMethod(
            getDeleteUserDataMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.DeleteUserDataRequest,
                dev.driftwise.v1.DeleteUserDataResponse>(
                  this, METHODID_DELETE_USER_DATA)))
          .build();
    }
  }

  /**
   * <pre>
   * ProfileService shows and deletes what Driftwise knows about a user.
   * </pre>
   */
  public static final class ProfileServiceStub extends io.grpc.stub.AbstractAsyncStub<ProfileServiceStub> {
    private ProfileServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ProfileServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ProfileServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Returns the user's layered interests; NOT_FOUND if the user has no events.
     * </pre>
     */
    public void getProfile(dev.driftwise.v1.GetProfileRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.GetProfileResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetProfileMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Streams the user's profile now (if it has events) and each time it changes. A reader slower
     * than the changes gets the newest profile and skips the versions in between. Ends with
     * NOT_FOUND when the user's data is deleted.
     * </pre>
     */
    public void watchProfile(dev.driftwise.v1.WatchProfileRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.WatchProfileResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getWatchProfileMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes the user's events, profile and interest vectors everywhere (right to be forgotten).
     * </pre>
     */
    public void deleteUserData(dev.driftwise.v1.DeleteUserDataRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.DeleteUserDataResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteUserDataMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * ProfileService shows and deletes what Driftwise knows about a user.
   * </pre>
   */
  public static final class ProfileServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<ProfileServiceBlockingStub> {
    private ProfileServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ProfileServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ProfileServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Returns the user's layered interests; NOT_FOUND if the user has no events.
     * </pre>
     */
    public dev.driftwise.v1.GetProfileResponse getProfile(dev.driftwise.v1.GetProfileRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetProfileMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Streams the user's profile now (if it has events) and each time it changes. A reader slower
     * than the changes gets the newest profile and skips the versions in between. Ends with
     * NOT_FOUND when the user's data is deleted.
     * </pre>
     */
    public java.util.Iterator<dev.driftwise.v1.WatchProfileResponse> watchProfile(
        dev.driftwise.v1.WatchProfileRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getWatchProfileMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes the user's events, profile and interest vectors everywhere (right to be forgotten).
     * </pre>
     */
    public dev.driftwise.v1.DeleteUserDataResponse deleteUserData(dev.driftwise.v1.DeleteUserDataRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteUserDataMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * ProfileService shows and deletes what Driftwise knows about a user.
   * </pre>
   */
  public static final class ProfileServiceFutureStub extends io.grpc.stub.AbstractFutureStub<ProfileServiceFutureStub> {
    private ProfileServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ProfileServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ProfileServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Returns the user's layered interests; NOT_FOUND if the user has no events.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.GetProfileResponse> getProfile(
        dev.driftwise.v1.GetProfileRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetProfileMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes the user's events, profile and interest vectors everywhere (right to be forgotten).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.DeleteUserDataResponse> deleteUserData(
        dev.driftwise.v1.DeleteUserDataRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteUserDataMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GET_PROFILE = 0;
  private static final int METHODID_WATCH_PROFILE = 1;
  private static final int METHODID_DELETE_USER_DATA = 2;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final ProfileServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(ProfileServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_GET_PROFILE:
          serviceImpl.getProfile((dev.driftwise.v1.GetProfileRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.GetProfileResponse>) responseObserver);
          break;
        case METHODID_WATCH_PROFILE:
          serviceImpl.watchProfile((dev.driftwise.v1.WatchProfileRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.WatchProfileResponse>) responseObserver);
          break;
        case METHODID_DELETE_USER_DATA:
          serviceImpl.deleteUserData((dev.driftwise.v1.DeleteUserDataRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.DeleteUserDataResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class ProfileServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ProfileServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.driftwise.v1.ProfileServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ProfileService");
    }
  }

  private static final class ProfileServiceFileDescriptorSupplier
      extends ProfileServiceBaseDescriptorSupplier {
    ProfileServiceFileDescriptorSupplier() {}
  }

  private static final class ProfileServiceMethodDescriptorSupplier
      extends ProfileServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    ProfileServiceMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (ProfileServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ProfileServiceFileDescriptorSupplier())
              .addMethod(getGetProfileMethod())
              .addMethod(getWatchProfileMethod())
              .addMethod(getDeleteUserDataMethod())
              .build();
        }
      }
    }
    return result;
  }
}
